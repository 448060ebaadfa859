"""The Whoosh index of passages: schema, building into a new generation, opening.

Layout of the index folder::

    index/
      current -> gen-20261126T212233-1a2b3c4d   (symlink, swapped atomically)
      gen-.../                                  (Whoosh files + manifest.json)

Each generation is self-contained: its manifest holds the article texts the
offsets refer to, so a running service never cites text from another build,
and the size and SHA-256 of every other file of the generation, checked when
the generation is opened (a damaged generation is never served).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import simplemma
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein
from whoosh import index as whoosh_index
from whoosh.analysis import (
    STOP_WORDS,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.searching import Searcher

from .corpus import Article, read_corpus
from .corroboration import Link, link_passages
from .nearest import VectorIndex, build_vector_index
from .passages import SPLITTER_VERSION, Passage, Token, repeated_lines, split_passages
from .postings import CHAMPIONS, Postings, build_postings
from .results import SourceDocument
from .semantic import SentenceEncoder, model_id, write_encoder

log = logging.getLogger(__name__)

# Bump when the schema or analyzer changes so that existing indexes are rebuilt.
INDEX_FORMAT = 11
CURRENT_LINK = "current"
MANIFEST = "manifest.json"
LINKS = "links.json"
SENTENCE_VECTORS = "sentence-vectors.npy"
GENERATIONS_KEPT = 2  # the current one and the one before, for requests still reading it
# How often a worker checks that the files of the generation it serves are unchanged.
FILE_CHECK_SECONDS = 1.0


class IndexUnavailable(RuntimeError):
    """The index folder holds no usable generation."""


class DigitGroupFilter(Filter):
    """Drop thousands separators so "$1,000" and "$1000" index the same term."""

    def __call__(self, tokens):
        for token in tokens:
            if "," in token.text:
                token.text = token.text.replace(",", "")
            yield token


class LemmaFilter(Filter):
    """Reduce words to their dictionary form first, so "sought" meets "seeks" and "paid" "pay"."""

    def __call__(self, tokens):
        for token in tokens:
            token.text = simplemma.lemmatize(token.text, lang="en")
            yield token


def make_analyzer(stoplist: frozenset[str] = STOP_WORDS):
    """Words and numbers (with their separators), lower-cased, stop words out, stemmed."""
    tokenizer = RegexTokenizer(r"\d+(?:[.,]\d+)*|\w+(?:\.\w+)*")
    stop = StopFilter(stoplist=stoplist)
    # Snowball (Porter2) stems more consistently than Porter: alleges/allegedly -> alleg.
    return (
        tokenizer
        | LowercaseFilter()
        | DigitGroupFilter()
        | stop
        | LemmaFilter()
        | StemFilter(lang="en")
    )


ANALYZER = make_analyzer()
# Whole words as written (lower-cased): what spelling suggestions are drawn from.
WORD = re.compile(r"[^\W\d_]{2,}")
WORDS_ANALYZER = RegexTokenizer(WORD.pattern) | LowercaseFilter()


def passage_tokens(passage: Passage) -> tuple[Token, ...]:
    """The analysed terms of a passage with the source offsets of their words."""
    # Whoosh reuses one token object while analysing: copy what we need at once.
    return tuple(
        Token(token.text, passage.start + token.startchar, passage.start + token.endchar)
        for token in ANALYZER(passage.text, chars=True)
    )


SCHEMA = Schema(
    id=ID(stored=True, unique=True),
    source=ID(stored=True),
    text=TEXT(analyzer=ANALYZER, stored=True),
    words=TEXT(analyzer=WORDS_ANALYZER),
    # Offsets and sentence spans, read back into memory when a generation opens.
    location=STORED,
)


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did."""

    generation: str
    built: bool
    articles: int
    passages: int


def build_index(
    seeds_dir: Path | str, index_dir: Path | str, *, force: bool = False
) -> BuildReport:
    """Index the articles of `seeds_dir` into a new generation and make it current.

    Does nothing when the articles, splitter and schema are unchanged since the
    current generation, unless `force`. A failed build leaves the current
    generation untouched.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    articles = read_corpus(seeds_dir)
    if not articles:
        raise ValueError(f"no readable .txt or .md articles in {seeds_dir}")
    corpus_hash = _corpus_hash(articles)
    # Checked before taking the lock: an unchanged index needs no write, so a
    # read-only index folder (a container's baked index) can be "built" at start.
    seen = _current_name(index_dir)
    if not force and (unchanged := _unchanged(index_dir, corpus_hash, len(articles))):
        return unchanged
    with _build_lock(index_dir):
        # Again only if another build swapped in a generation while this one waited.
        if (
            not force
            and _current_name(index_dir) != seen
            and (unchanged := _unchanged(index_dir, corpus_hash, len(articles)))
        ):
            return unchanged
        # Under the lock, a half-written generation is one a killed build left.
        for stale in index_dir.glob(".building-*"):
            shutil.rmtree(stale, ignore_errors=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=index_dir))
        # mkdtemp makes it private; workers of other users (of the same group, in a
        # container) must read it and later builds delete it: as the umask allows.
        building.chmod(0o777 & ~_umask())
        try:
            manifest = _write_generation(building, articles, corpus_hash)
            generation = index_dir / manifest["generation"]
            building.rename(generation)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        _point_current_at(index_dir, generation.name)
        _remove_old_generations(index_dir)
    return BuildReport(generation.name, True, len(articles), manifest["passages"])


def _current_name(index_dir: Path) -> str | None:
    try:
        return os.readlink(index_dir / CURRENT_LINK)
    except OSError:
        return None


def _umask() -> int:
    # Read by setting it: there is no other way (builds run one at a time).
    previous = os.umask(0o022)
    os.umask(previous)
    return previous


def _unchanged(index_dir: Path, corpus_hash: str, articles: int) -> BuildReport | None:
    """The current generation when it holds these articles and is intact, else None."""
    current = _read_current_manifest(index_dir)
    if not current or current.get("corpus_hash") != corpus_hash:
        return None
    try:
        _check_manifest(index_dir / CURRENT_LINK, current)
    except (OSError, ValueError) as exc:
        log.warning("rebuilding the damaged current generation: %s", exc)
        return None
    return BuildReport(current["generation"], False, articles, current["passages"])


def _write_generation(folder: Path, articles: list[Article], corpus_hash: str) -> dict:
    """Write the Whoosh index, corroboration links and manifest for `articles` into `folder`."""
    ix = whoosh_index.create_in(str(folder), SCHEMA)
    sources = []
    # In document-number order: one writer, one segment, added in this order.
    passages: list[Passage] = []
    # Lines shared by several articles are the sites' furniture, not their text.
    boilerplate = repeated_lines(article.text for article in articles)
    # The writer commits on success and cancels if anything raises.
    with ix.writer() as writer:
        for article in articles:
            article_passages = split_passages(article.text, article.name, boilerplate=boilerplate)
            for passage in article_passages:
                writer.add_document(
                    id=passage.id,
                    source=article.name,
                    text=passage.text,
                    words=passage.text,
                    location={
                        "start": passage.start,
                        "end": passage.end,
                        "byte_start": passage.byte_start,
                        "byte_end": passage.byte_end,
                        "line_start": passage.line_start,
                        "line_end": passage.line_end,
                        "sentences": passage.sentences,
                        "heading": passage.heading,
                    },
                )
            passages.extend(article_passages)
            sources.append(
                {
                    "name": article.name,
                    "title": article.title,
                    "publisher": article.publisher,
                    "date": article.date,
                    "url": article.url,
                    "passages": len(article_passages),
                    "text": article.text,
                }
            )
    tokens = [passage_tokens(passage) for passage in passages]
    postings = build_postings(tokens)
    postings.save(folder)
    _write_links(folder, passages, tokens, postings)
    _write_vectors(folder, passages)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    manifest = {
        "generation": f"gen-{stamp}-{corpus_hash[:8]}",
        "format": INDEX_FORMAT,
        "corpus_hash": corpus_hash,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "passages": len(passages),
        "sources": sources,
        "files": _file_digests(folder),
    }
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return manifest


def _write_links(
    folder: Path, passages: list[Passage], tokens: list[tuple[Token, ...]], postings: Postings
) -> None:
    """Record, for every passage, the passages of other sources that state the same facts."""
    fallback = math.log(len(passages)) + 1
    links = link_passages(passages, tokens, lambda term: postings.idf_of(term, fallback))
    rows = [
        [(link.other, round(link.similarity, 4), link.near_copy, link.conflicts)
         for link in passage_links]
        for passage_links in links
    ]  # fmt: skip
    (folder / LINKS).write_text(json.dumps(rows), encoding="utf-8")


def _read_links(folder: Path) -> list[list[Link]]:
    rows = json.loads((folder / LINKS).read_text(encoding="utf-8"))
    return [
        [Link(other, similarity, copy, tuple(map(tuple, conflicts)))
         for other, similarity, copy, conflicts in passage_links]
        for passage_links in rows
    ]  # fmt: skip


def _write_vectors(folder: Path, passages: list[Passage]) -> None:
    """Write the encoder, then the embedding of every passage and of every sentence of each."""
    sentences = [p.text[s - p.start : e - p.start] for p in passages for s, e in p.sentences]
    # Most passages are one sentence, and documentation repeats itself: each
    # distinct text is encoded once (the encoder is most of a build's time).
    texts = list(dict.fromkeys([*(p.text for p in passages), *sentences]))
    row = {text: i for i, text in enumerate(texts)}
    started = time.perf_counter()
    vectors = write_encoder(folder).encode(texts, threads=os.cpu_count() or 1)
    log.info("encoded %d distinct texts in %.1f s", len(texts), time.perf_counter() - started)
    build_vector_index(vectors[[row[p.text] for p in passages]]).save(folder)
    np.save(folder / SENTENCE_VECTORS, vectors[[row[text] for text in sentences]])


def _read_vectors(folder: Path, name: str) -> np.ndarray:
    # Read into memory, not mapped: a mapped file truncated under a worker kills it
    # with SIGBUS. The cost is one copy per worker: 1.5 KB per sentence (about
    # 125 MB for the 84,000 sentences of the Python documentation).
    return np.load(folder / name)


def _file_digests(folder: Path) -> dict[str, dict]:
    """Size and SHA-256 of every file of a generation but its manifest."""
    digests = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != MANIFEST:
            digest = hashlib.sha256()
            with path.open("rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
            digests[path.name] = {"size": path.stat().st_size, "sha256": digest.hexdigest()}
    return digests


def _damage(folder: Path, manifest: dict) -> str | None:
    """What differs between a generation's files and its manifest, or None when nothing does."""
    recorded = manifest.get("files")
    if recorded is None:
        return "the manifest lists no files"
    found = _file_digests(folder)
    changed = sorted(
        name for name in recorded.keys() | found.keys() if recorded.get(name) != found.get(name)
    )
    return f"files differ from the manifest: {', '.join(changed)}" if changed else None


def _file_stats(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file: cheap to compare, no reading."""
    stats = []
    for path in sorted(folder.iterdir()):
        stat = path.stat()
        stats.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


def _corpus_hash(articles: list[Article]) -> str:
    """Fingerprint of everything that decides the index's content."""
    settings = (
        f"format={INDEX_FORMAT};splitter={SPLITTER_VERSION};model={model_id()};"
        f"champions={CHAMPIONS}"
    )
    digest = hashlib.sha256(settings.encode())
    for article in articles:
        meta = (article.name, article.sha256, article.title, article.publisher, article.date)
        digest.update(json.dumps([*meta, article.url]).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder, across processes."""
    with open(index_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _point_current_at(index_dir: Path, generation: str) -> None:
    """Swap the `current` symlink in one atomic rename."""
    link = index_dir / f".{CURRENT_LINK}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(generation)
    os.replace(link, index_dir / CURRENT_LINK)


def _remove_old_generations(index_dir: Path) -> None:
    """Delete generations beyond the newest few, never the current one."""
    current = os.readlink(index_dir / CURRENT_LINK)
    generations = sorted(
        (path.name for path in index_dir.glob("gen-*") if path.is_dir()), reverse=True
    )
    keep = set(generations[:GENERATIONS_KEPT]) | {current}
    for name in generations:
        if name not in keep:
            shutil.rmtree(index_dir / name, ignore_errors=True)


def _read_current_manifest(index_dir: Path) -> dict | None:
    """The manifest of the current generation, or None when there is none."""
    try:
        return json.loads((index_dir / CURRENT_LINK / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


CORRECTION_CACHE_WORDS = 20_000


@dataclass
class IndexGeneration:
    """One opened generation: the Whoosh index and the articles it was built from."""

    name: str
    ix: whoosh_index.Index
    sources: dict[str, SourceDocument]
    # Every passage, by Whoosh document number.
    passages: list[Passage]
    # Every passage's analysed terms and every term's best passages.
    postings: Postings
    # By document number: passages of other sources stating the same facts.
    links: list[list[Link]]
    # Every passage's unit-length embedding (semantic.DIMENSIONS wide), for the nearest.
    nearest: VectorIndex
    # Every passage's sentences in turn; passage d's are rows sentence_rows[d] onwards.
    sentence_vectors: np.ndarray
    # The encoder these vectors came from, for the questions.
    encoder: SentenceEncoder
    # Where the generation's files are, and their sizes and times when it was opened.
    folder: Path
    file_stats: tuple[tuple[str, int, int], ...]

    @property
    def passage_count(self) -> int:
        """How many passages the generation holds."""
        return len(self.passages)

    def __post_init__(self):
        # Words as written, by first letter, with their frequencies: what "did you mean" draws on.
        self.spelling_words = _words_by_initial(self.ix)
        # Per instance, so a replaced generation takes its cache with it.
        self.correction = functools.lru_cache(maxsize=CORRECTION_CACHE_WORDS)(self._correction)
        # Searchers not in use (list.pop and append are atomic); their files are
        # closed when the generation is let go (requests may still hold it after a swap).
        self._searchers: list[Searcher] = []
        weakref.finalize(self, _close_searchers, self._searchers)
        self.sentence_rows = np.cumsum([0] + [len(p.sentences) for p in self.passages]).tolist()
        # Titles, headings and bylines: passages of their own, ranked on their own terms.
        self.headings = frozenset(d for d, passage in enumerate(self.passages) if passage.heading)
        # By document number, for filtering the nearest passages by source without a loop.
        self.passage_sources = np.array([passage.source for passage in self.passages])

    def tokens(self, docnum: int) -> tuple[Token, ...]:
        """The analysed terms of a passage, as the build found them."""
        return self.postings.tokens(docnum)

    @property
    def max_idf(self) -> float:
        """The idf of a term no passage holds (Whoosh's formula with a frequency of 0)."""
        return math.log(len(self.passages)) + 1

    def damage(self) -> str | None:
        """What changed in this generation's files since it was opened, or None."""
        try:
            stats = _file_stats(self.folder)
        except OSError as exc:
            return f"generation {self.name} can no longer be read ({exc})"
        if stats != self.file_stats:
            return f"the files of generation {self.name} changed while it was served"
        return None

    def uses_word(self, word: str) -> bool:
        """Whether the articles use a lower-cased word as written (a cheap term lookup)."""
        with self.searcher() as searcher:
            return bool(searcher.doc_frequency("words", word))

    def _correction(self, word: str) -> str | None:
        """The articles' closest word to a lower-cased word they lack (cached as `correction`).

        None when the articles use the word, or use nothing close to it. Among the
        words with the same first letter within one edit (two for a word of seven
        letters or more), the nearest, then the most frequent. rapidfuzz measures
        the distances in C++: Whoosh's corrector, in Python, took up to 80 ms a
        word over the 32,000 words of the Linux kernel documentation (now 1 ms).
        """
        if self.uses_word(word):
            return None
        words, frequencies = self.spelling_words.get(word[0], ((), ()))
        matches = process.extract(
            word,
            words,
            scorer=DamerauLevenshtein.distance,
            score_cutoff=1 if len(word) < 7 else 2,
            limit=None,
        )
        if not matches:
            return None
        _, _, best = min(matches, key=lambda match: (match[1], -frequencies[match[2]], match[0]))
        return words[best]

    def term_idf(self, term: str) -> float:
        """The idf of an analysed term; a term the corpus lacks weighs most."""
        return self.postings.idf_of(term, self.max_idf)

    @contextlib.contextmanager
    def searcher(self) -> Iterator[Searcher]:
        """A Whoosh searcher on this generation, lent for the `with` block, then reused.

        Whoosh searchers must not serve two requests at once, and opening one per
        request costs more than most searches; so they wait in a pool, which holds
        as many as requests ever searched at the same time (under gevent, where a
        search never yields, about one). Not per thread: gevent makes every request
        a "thread" of its own.
        """
        try:
            searcher = self._searchers.pop()
        except IndexError:
            searcher = self.ix.searcher()
        try:
            yield searcher
        finally:
            self._searchers.append(searcher)


def _words_by_initial(ix: whoosh_index.Index) -> dict[str, tuple[list[str], list[float]]]:
    """Every word of the `words` field with its frequency, grouped by first letter."""
    groups: dict[str, tuple[list[str], list[float]]] = {}
    with ix.reader() as reader:
        for term, info in reader.iter_field("words"):
            word = term.decode()
            words, frequencies = groups.setdefault(word[0], ([], []))
            words.append(word)
            frequencies.append(info.weight())
    return groups


def _close_searchers(searchers: list[Searcher]) -> None:
    for searcher in searchers:
        searcher.close()


def open_generation(index_dir: Path | str) -> IndexGeneration:
    """Open the current generation of `index_dir`, or raise IndexUnavailable."""
    with _unavailable_unless_readable(index_dir) as folder:
        manifest = _verified_manifest(folder)
        file_stats = _file_stats(folder)
        ix = _open_whoosh(folder)
        sources = {item["name"]: SourceDocument(**item) for item in manifest["sources"]}
        return IndexGeneration(
            folder.name,
            ix,
            sources,
            _read_passages(ix),
            Postings.load(folder),
            _read_links(folder),
            VectorIndex.load(folder),
            _read_vectors(folder, SENTENCE_VECTORS),
            SentenceEncoder(folder),
            folder,
            file_stats,
        )


def check_index(index_dir: Path | str) -> str:
    """The current generation's name if its files open, else raise IndexUnavailable (cheap)."""
    with _unavailable_unless_readable(index_dir) as folder:
        _verified_manifest(folder)
        _open_whoosh(folder).doc_count()
        return folder.name


def _verified_manifest(folder: Path) -> dict:
    """A generation's manifest, once every file it lists is as it was written."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    _check_manifest(folder, manifest)
    return manifest


def _check_manifest(folder: Path, manifest: dict) -> None:
    """Raise ValueError unless the manifest and the files it lists are as the build wrote them."""
    if manifest.get("format") != INDEX_FORMAT:
        raise ValueError(f"built by another version (format {manifest.get('format')})")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ValueError("the manifest was changed after the build")
    if damage := _damage(folder, manifest):
        raise ValueError(damage)


def _manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's content (the article texts citations quote, the files)."""
    content = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _open_whoosh(folder: Path) -> whoosh_index.Index:
    # Files read, not mapped: a segment truncated under a worker must raise, not SIGBUS.
    return FileStorage(str(folder), supports_mmap=False).open_index()


@contextlib.contextmanager
def _unavailable_unless_readable(index_dir: Path | str) -> Iterator[Path]:
    """Yield the current generation's folder; turn any failure into one clear IndexUnavailable.

    Its message, for the operator's log, names paths and causes: never show it to clients.
    """
    index_dir = Path(index_dir)
    hint = f"run `qa-service index --index {index_dir}`"
    link = index_dir / CURRENT_LINK
    if not link.exists():
        raise IndexUnavailable(f"no index at {index_dir}: {hint}")
    folder = link.resolve()
    try:
        yield folder
    except Exception as exc:  # any damage to the files means the same to the caller
        raise IndexUnavailable(f"index at {folder} is unreadable ({exc}): {hint}") from exc


def _read_passages(ix: whoosh_index.Index) -> list[Passage]:
    """All stored passages by document number (the index has no deletions)."""
    with ix.reader() as reader:
        return [
            Passage(
                source=fields["source"],
                text=fields["text"],
                **{
                    **fields["location"],
                    "sentences": tuple(map(tuple, fields["location"]["sentences"])),
                },
            )
            for _, fields in reader.iter_docs()
        ]


class IndexHandle:
    """A per-process view of an index folder that follows the `current` generation.

    Open it after gunicorn forks: Whoosh file handles must not be shared
    between processes. Each request takes the generation once from `generation()`.
    """

    def __init__(self, index_dir: Path | str):
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        self._generation: IndexGeneration | None = None
        self._checked_at = 0.0
        self._damage: str | None = None

    @property
    def loaded(self) -> IndexGeneration | None:
        """The generation this process has open, without opening or checking anything."""
        return self._generation

    def generation(self) -> IndexGeneration:
        """The current generation, reopened when a build has swapped in a new one.

        Raises IndexUnavailable when there is none, or when the files of the one
        this process serves have changed since it opened them (checked at most
        every FILE_CHECK_SECONDS). A worker could go on answering from what it
        read into memory, but it refuses instead: workers that opened the
        generation before the damage and after it must agree on readiness, and
        the operator must see the fault (503 and one log line) and rebuild.
        """
        current_name = _current_name(self.index_dir)
        loaded = self._generation
        if loaded is not None and loaded.name == current_name:
            now = time.monotonic()
            if now - self._checked_at >= FILE_CHECK_SECONDS:
                self._damage, self._checked_at = loaded.damage(), now
            if self._damage:
                raise IndexUnavailable(f"{self._damage}: run `qa-service index --force`")
            return loaded
        del loaded  # nothing here may keep the generation being replaced alive
        with self._lock:
            if self._generation is None or self._generation.name != current_name:
                self._generation = open_generation(self.index_dir)
                self._damage, self._checked_at = None, time.monotonic()
                _out_of_the_collector_s_sight()
            return self._generation


def _out_of_the_collector_s_sight() -> None:
    """Let the cyclic garbage collector skip what a worker holds for as long as it serves.

    A generation is about ten objects per passage (half a million for the
    Python documentation), and a full collection walks every one: a 0.1 s
    pause in whichever request sets it off. They are moved to the permanent
    generation (gc.freeze) once opened; the generation they replace (and any
    garbage among them) is collected once here, on a swap, instead.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()

"""The Whoosh engine: a generation as files in one folder, read into each worker.

The folder holds Whoosh's index of the passages (their text, source and
location, and the words spelling draws on) beside what the build computed
(postings.py, nearest.py, the links and sentence vectors, the encoder); the
folder's life (build, swap, clean) is generations.py's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.query import Or, Term
from whoosh.searching import Searcher

from qa_service.core.corroboration import Link, links_as_rows, links_from_rows
from qa_service.core.passages import Passage, Token
from qa_service.core.results import SourceDocument
from qa_service.engines import generations
from qa_service.engines.generations import file_stats
from qa_service.engines.layered import LayeredStore, full_build_of
from qa_service.retrieval.analysis import ANALYZER, WORDS_ANALYZER
from qa_service.retrieval.nearest import VectorIndex
from qa_service.retrieval.postings import Postings
from qa_service.retrieval.semantic import SentenceEncoder, write_encoder
from qa_service.retrieval.spelling import closest_word
from qa_service.retrieval.store import SHA256, VERSIONS_DAYS, Layer, PassageStore, PreparedIndex

log = logging.getLogger(__name__)
LINKS = "links.json"
# Beside the generations: every version of every article indexed, by SHA-256.
VERSIONS = "versions"
SENTENCE_VECTORS = "sentence-vectors.npy"
BOILERPLATE = "boilerplate.json"
CORRECTION_CACHE_WORDS = 20_000

SCHEMA = Schema(
    id=ID(stored=True, unique=True),
    source=ID(stored=True),
    text=TEXT(analyzer=ANALYZER, stored=True),
    words=TEXT(analyzer=WORDS_ANALYZER),
    # Offsets and sentence spans, read back into memory when a generation opens.
    location=STORED,
)


class WhooshEngine:
    """Generations as folders under `index_dir` (an `store.Engine`)."""

    def __init__(self, index_dir: Path | str, versions_days: float = VERSIONS_DAYS):
        self.index_dir = Path(index_dir)
        self.versions_days = versions_days

    def current_name(self) -> str | None:
        """The current generation's name, or None."""
        return generations.current_name(self.index_dir)

    def unchanged(self, corpus_hash: str) -> tuple[str, int] | None:
        """The current generation's name and passages if built from `corpus_hash` and intact."""
        current = generations.read_current_manifest(self.index_dir)
        if not current or current.get("corpus_hash") != corpus_hash:
            return None
        try:
            generations.check_manifest(self.index_dir / generations.CURRENT_LINK, current)
        except (OSError, ValueError) as exc:
            log.warning("rebuilding the damaged current generation: %s", exc)
            return None
        return current["generation"], current["passages"]

    def build_lock(self):
        """One build at a time per index folder, across processes."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        return generations.build_lock(self.index_dir)

    def publish(self, prepared: PreparedIndex, corpus_hash: str, layer: Layer | None = None) -> str:
        """Write a new generation folder beside the current one and swap it in; a layer's
        folder holds the layer alone (its encoder is its base's)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        held = []  # the versions the new generation cites besides its own sources
        if layer is not None:
            base = generations.read_manifest(self.index_dir / layer.base)
            if base is None or base.get("layer"):
                raise ValueError(f"no full build {layer.base} to lay a layer over")
            held = [s["sha256"] for s in base["sources"] if s["name"] not in layer.hidden]
        with generations.new_generation(self.index_dir, corpus_hash) as (folder, name):
            write(folder, prepared, encoder=layer is None)
            manifest = {
                "generation": name,
                "corpus_hash": corpus_hash,
                "passages": len(prepared.passages),
                "sources": prepared.sources,
            }
            if layer is not None:
                manifest["layer"] = {"base": layer.base, "hidden": dict(layer.hidden)}
            generations.write_manifest(folder, manifest)
        self._keep_versions(prepared.sources, held)
        return name

    def _keep_versions(self, sources: list[dict], held: Sequence[str] = ()) -> None:
        """Store each article's text by its SHA-256 (once), mark it and the `held` versions
        seen, forget old ones."""
        folder = self.index_dir / VERSIONS
        folder.mkdir(exist_ok=True)
        current = {f"{sha256}.json" for sha256 in held}
        for sha256 in held:
            with contextlib.suppress(FileNotFoundError):
                os.utime(folder / f"{sha256}.json")
        for source in sources:
            path = folder / f"{source['sha256']}.json"
            current.add(path.name)
            if path.exists():
                os.utime(path)  # seen now: its retention starts again
                continue
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(source, ensure_ascii=False), encoding="utf-8")
            os.replace(partial, path)
        cutoff = time.time() - self.versions_days * 86400
        for path in folder.glob("*.json"):
            if path.name not in current and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)

    def version(self, sha256: str) -> SourceDocument | None:
        """An article's text as some build indexed it, by the text's SHA-256, or None."""
        if not SHA256.fullmatch(sha256):
            return None
        try:
            text = (self.index_dir / VERSIONS / f"{sha256}.json").read_text(encoding="utf-8")
        except OSError:
            return None
        return SourceDocument(**json.loads(text))

    def open(self, reuse: PassageStore | None = None) -> PassageStore:
        """Open the current generation, or raise IndexUnavailable; a layer's base is taken
        from `reuse` when it lies over the same (no reading, no checking again)."""
        with generations.unavailable_unless_readable(self.index_dir) as folder:
            manifest = generations.verified_manifest(folder)
            if not (layer := manifest.get("layer")):
                return open_folder(folder, manifest)
            base = full_build_of(reuse)
            if base is None or base.name != layer["base"]:
                base_folder = self.index_dir / layer["base"]
                base = open_folder(base_folder, generations.verified_manifest(base_folder))
            top = open_folder(folder, manifest, base.encoder)
            hidden = {name: tuple(span) for name, span in layer["hidden"].items()}
            return LayeredStore(folder.name, base, top, Layer(layer["base"], hidden))

    def check(self) -> str:
        """The current generation's name if its files (and its base's) open, else raise
        IndexUnavailable."""
        with generations.unavailable_unless_readable(self.index_dir) as folder:
            manifest = generations.verified_manifest(folder)
            _open_whoosh(folder).doc_count()
            if layer := manifest.get("layer"):
                generations.verified_manifest(self.index_dir / layer["base"])
                _open_whoosh(self.index_dir / layer["base"]).doc_count()
            return folder.name


def write(folder: Path, prepared: PreparedIndex, *, encoder: bool = True) -> None:
    """Write a prepared index into `folder`: the Whoosh index, then what the build computed
    (and the encoder the vectors came from, unless told not to)."""
    ix = whoosh_index.create_in(str(folder), SCHEMA)
    # In position order: one writer, one segment, so Whoosh's document numbers are positions.
    # The writer commits on success and cancels if anything raises.
    with ix.writer() as writer:
        for passage in prepared.passages:
            writer.add_document(
                id=passage.id,
                source=passage.source,
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
    prepared.postings.save(folder)
    rows = [links_as_rows(passage_links) for passage_links in prepared.links]
    (folder / LINKS).write_text(json.dumps(rows), encoding="utf-8")
    prepared.vectors.save(folder)
    np.save(folder / SENTENCE_VECTORS, prepared.sentence_vectors)
    (folder / BOILERPLATE).write_text(json.dumps(sorted(prepared.boilerplate)), encoding="utf-8")
    if encoder:
        write_encoder(folder)


def open_folder(
    folder: Path, manifest: dict, encoder: SentenceEncoder | None = None
) -> WhooshGeneration:
    """Open the generation in `folder` (its manifest already verified), with its own
    encoder unless given one."""
    stats = file_stats(folder)
    ix = _open_whoosh(folder)
    return WhooshGeneration(
        folder.name,
        ix,
        {item["name"]: SourceDocument(**item) for item in manifest["sources"]},
        _read_passages(ix),
        Postings.load(folder),
        _read_links(folder),
        VectorIndex.load(folder),
        # Read into memory, not mapped: a mapped file truncated under a worker kills it
        # with SIGBUS. The cost is one copy per worker: 1.5 KB per sentence (about
        # 125 MB for the 84,000 sentences of the Python documentation).
        np.load(folder / SENTENCE_VECTORS),
        encoder or SentenceEncoder(folder),
        frozenset(json.loads((folder / BOILERPLATE).read_text(encoding="utf-8"))),
        folder,
        stats,
    )


@dataclass
class WhooshGeneration:
    """One opened generation (a `store.PassageStore`): the Whoosh index and what it holds."""

    name: str
    ix: whoosh_index.Index
    sources: dict[str, SourceDocument]
    # Every passage, by position (Whoosh's document number).
    passages: list[Passage]
    # Every passage's analysed terms and every term's best passages.
    postings: Postings
    # By position: passages of other sources stating the same facts.
    links: list[list[Link]]
    # Every passage's unit-length embedding (semantic.DIMENSIONS wide).
    vectors: VectorIndex
    # Every passage's sentences in turn; passage d's are rows sentence_rows[d] onwards.
    sentence_vectors: np.ndarray
    # The encoder these vectors came from, for the questions.
    encoder: SentenceEncoder
    # The lines the build took for the sites' furniture.
    boilerplate: frozenset[str]
    # Where the generation's files are, and their sizes and times when it was opened.
    folder: Path
    file_stats: tuple[tuple[str, int, int], ...]

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
        # By position, for filtering the nearest passages by source without a loop.
        self.passage_sources = np.array([passage.source for passage in self.passages])

    @property
    def passage_count(self) -> int:
        """How many passages the generation holds."""
        return len(self.passages)

    @property
    def max_idf(self) -> float:
        """The idf of a term no passage holds (Whoosh's formula with a frequency of 0)."""
        return math.log(len(self.passages)) + 1

    @property
    def mean_length(self) -> float:
        """The mean number of analysed terms of a passage (BM25's average length)."""
        return float(self.postings.mean_length)

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        return {passage.id: position for position, passage in enumerate(self.passages)}

    def passages_at(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions."""
        return {position: self.passages[position] for position in positions}

    def position_of(self, passage_id: str) -> int | None:
        """The position of the passage with this stable id, or None."""
        return self._positions.get(passage_id)

    def term_idf(self, term: str) -> float:
        """The idf of an analysed term; a term the corpus lacks weighs most."""
        return self.postings.idf_of(term, self.max_idf)

    def term_ids(self, terms: Sequence[str]) -> dict[int, str]:
        """The ids of the terms the store holds, to compare with `token_columns`."""
        known = self.postings.term_ids
        return {known[term]: term for term in terms if term in known}

    def token_columns(self, position: int) -> tuple[list[int], list[int], list[int]]:
        """A passage's analysed terms as term ids, with their words' source offsets."""
        return self.postings.token_columns(position)

    def token_idf(self, term_ids: Sequence[int]) -> list[float]:
        """The idf of each term id."""
        return self.postings.idf[list(term_ids)].tolist()

    def tokens(self, position: int) -> tuple[Token, ...]:
        """The analysed terms of a passage, as the build found them."""
        return self.postings.tokens(position)

    def best_passages(
        self, terms: Sequence[str], limit: int, sources: Sequence[str] | None = None
    ) -> dict[int, float]:
        """Up to `limit` passages by BM25 over `terms`, position to score; within `sources`.

        The champion lists keep a term's best passages over the whole corpus,
        which may all lie outside the sources asked for: within sources, Whoosh
        searches whole posting lists (same scores).
        """
        if not sources:
            return self.postings.best_passages(terms, limit)
        allowed = Or([Term("source", name) for name in sources])
        with self.searcher() as searcher:
            query = Or([Term("text", term) for term in terms])
            hits = searcher.search(query, limit=limit, filter=allowed)
            return {hit.docnum: hit.score for hit in hits}

    def encode_question(self, question: str) -> np.ndarray:
        """A question's unit-length embedding."""
        return self.encoder.encode([question])[0]

    def nearest(
        self, vector: np.ndarray, limit: int, sources: Sequence[str] | None = None
    ) -> list[int]:
        """The positions of up to `limit` passages nearest in meaning, best first."""
        allowed = np.isin(self.passage_sources, list(sources)) if sources else None
        return self.vectors.nearest(vector, limit, allowed)

    def similarity(self, positions: Sequence[int], vector: np.ndarray) -> np.ndarray:
        """The cosine of `vector` with each passage's embedding."""
        return self.vectors.similarity(np.asarray(positions), vector)

    def sentence_similarity(self, position: int, vector: np.ndarray) -> list[float]:
        """The cosine of `vector` with each of a passage's sentences, in order."""
        rows = self.sentence_vectors[
            self.sentence_rows[position] : self.sentence_rows[position + 1]
        ]
        return (rows @ vector).tolist()

    def damage(self) -> str | None:
        """What changed in this generation's files since it was opened, or None."""
        try:
            stats = file_stats(self.folder)
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

        None when the articles use the word, or use nothing close to it: the
        closest (spelling.closest_word) of the words with the same first letter.
        """
        if self.uses_word(word):
            return None
        return closest_word(word, *self.spelling_words.get(word[0], ((), ())))

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


def _open_whoosh(folder: Path) -> whoosh_index.Index:
    # Files read, not mapped: a segment truncated under a worker must raise, not SIGBUS.
    return FileStorage(str(folder), supports_mmap=False).open_index()


def _read_passages(ix: whoosh_index.Index) -> list[Passage]:
    """All stored passages by position (the index has no deletions)."""
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


def _read_links(folder: Path) -> list[list[Link]]:
    rows = json.loads((folder / LINKS).read_text(encoding="utf-8"))
    return [links_from_rows(passage_links) for passage_links in rows]

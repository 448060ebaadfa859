"""A Whoosh generation, opened: the folder's files read into each worker.

The folder holds Whoosh's index of the passages (their terms, source and
location, and the words spelling draws on) beside what the build computed
(postings, vectors, links, sentence vectors, the encoder): write.py.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh.filedb.filestore import FileStorage
from whoosh.query import Or, Term
from whoosh.searching import Searcher

from qa_service.core.corroboration import Link, links_from_rows
from qa_service.core.passages import Passage, Token
from qa_service.core.results import SourceDocument
from qa_service.engines.generations import check_file, file_stats
from qa_service.retrieval.nearest import ARRAYS as NEAREST
from qa_service.retrieval.nearest import VectorIndex
from qa_service.retrieval.postings import Postings, concatenated_rows
from qa_service.retrieval.semantic import SentenceEncoder
from qa_service.retrieval.store import (
    CandidateFeatures,
    Candidates,
    GenerationInfo,
    Query,
    Terms,
    similarity_beside,
    with_neighbours,
)

from .write import BOILERPLATE, LINKS, PASSAGES, SENTENCE_VECTORS


def open_folder(
    folder: Path, manifest: dict, encoder: SentenceEncoder | None = None, *, whole: bool = True
) -> WhooshGeneration:
    """Open the generation in `folder` (its manifest already verified), with its own
    encoder unless given one; unless `whole`, its links, vectors and spelling words are
    read at first use (see `store.Engine.open`), and the files of those that the manifest
    was verified without (`DEFERRED_FILES`) checked then."""
    stats = file_stats(folder)
    ix = open_whoosh(folder)
    sources = {item["name"]: SourceDocument(**item) for item in manifest["sources"]}
    passages = _read_passages(folder, sources)
    postings = Postings.load(folder)
    info = GenerationInfo(
        name=folder.name,
        passage_count=len(passages),
        mean_length=float(postings.mean_length),
        boilerplate=frozenset(json.loads((folder / BOILERPLATE).read_text(encoding="utf-8"))),
        encoder=encoder or SentenceEncoder(folder),
    )
    generation = WhooshGeneration(info, ix, sources, passages, postings, folder, stats)
    if whole:
        for read_at_first_use in _READ_AT_FIRST_USE:
            getattr(generation, read_at_first_use)
    else:
        generation.unverified.update((name, manifest["files"][name]) for name in DEFERRED_FILES)
    return generation


@dataclass(eq=False)
class WhooshGeneration:
    """One opened generation (a `store.PassageStore`): the Whoosh index and what it holds."""

    info: GenerationInfo
    ix: whoosh_index.Index
    sources: dict[str, SourceDocument]
    # Every passage, by position (Whoosh's document number).
    passage_list: list[Passage]
    # Every passage's analysed terms and every term's best passages.
    postings: Postings
    # Where the generation's files are, and their sizes and times when it was opened.
    folder: Path
    file_stats: tuple[tuple[str, int, int], ...]
    # Searchers not in use (list.pop and append are atomic): see `searcher`.
    _searchers: list[Searcher] = field(default_factory=list)
    # The manifest's entries of files not checked yet: checked before they are read.
    unverified: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        # Their files are closed when the generation is let go (requests may still hold it
        # after a swap).
        weakref.finalize(self, _close_searchers, self._searchers)
        self.sentence_rows = np.cumsum([0] + [len(p.sentences) for p in self.passage_list])
        # By position, for filtering the nearest passages by source without a loop.
        self.passage_sources = np.array([passage.source for passage in self.passage_list])

    @functools.cached_property
    def links(self) -> list[list[Link]]:
        """By position: passages of other sources stating the same facts."""
        self._verify(LINKS)
        return _read_links(self.folder)

    @functools.cached_property
    def vectors(self) -> VectorIndex:
        """Every passage's unit-length embedding (semantic.DIMENSIONS wide)."""
        self._verify(NEAREST)
        return VectorIndex.load(self.folder)

    @functools.cached_property
    def sentence_vectors(self) -> np.ndarray:
        """Every passage's sentences' embeddings in turn: passage d's are rows
        sentence_rows[d] onwards."""
        # Read into memory, not mapped: a mapped file truncated under a worker kills it
        # with SIGBUS. The cost is one copy per worker: 1.5 KB per sentence (about
        # 125 MB for the 84,000 sentences of the Python documentation).
        self._verify(SENTENCE_VECTORS)
        return np.load(self.folder / SENTENCE_VECTORS)

    def _verify(self, name: str) -> None:
        """Check a file the manifest was verified without, before it is first read."""
        if name in self.unverified:
            check_file(self.folder, name, self.unverified[name])
            del self.unverified[name]

    @functools.cached_property
    def spelling_words(self) -> dict[str, tuple[list[str], list[float]]]:
        """Words as written, by first letter, with their frequencies: what "did you
        mean" draws on."""
        return _words_by_initial(self.ix)

    def terms(self, terms: Sequence[str]) -> Terms:
        """The idf and ids of analysed terms; a term the corpus lacks weighs most."""
        known = self.postings.term_ids
        return Terms(
            idf={term: self.postings.idf_of(term, self.info.max_idf) for term in terms},
            ids={known[term]: term for term in terms if term in known},
        )

    def candidates(self, query: Query, limit: int) -> Candidates:
        """The best passages by BM25 and the nearest by meaning, within the query's sources."""
        nearest = []
        if query.vector is not None:
            allowed = np.isin(self.passage_sources, list(query.sources)) if query.sources else None
            nearest = self.vectors.nearest(query.vector, limit, allowed)
        return Candidates(self._best_passages(query.terms, limit, query.sources), nearest)

    def _best_passages(
        self, terms: Sequence[str], limit: int, sources: Sequence[str] | None
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

    def features(
        self,
        positions: Sequence[int],
        vector: np.ndarray,
        *,
        idf: bool = False,
        sentences: bool = False,
    ) -> dict[int, CandidateFeatures]:
        """What the second stage reads about these passages, from memory."""
        around = with_neighbours(positions, self.info.passage_count)
        if not around:
            return {}
        similarity = dict(
            zip(around, self.vectors.similarity(np.asarray(around), vector).tolist(), strict=True)
        )
        # Every candidate's words and sentences in one gather each, not a few numpy calls
        # per candidate (a hundred candidates a question).
        wanted = np.asarray(positions)
        postings = self.postings
        tokens, token_bounds = concatenated_rows(postings.token_rows, wanted)
        term_ids = postings.token_terms[tokens]
        terms = term_ids.tolist()
        starts, ends = postings.token_starts[tokens].tolist(), postings.token_ends[tokens].tolist()
        idfs = postings.idf[term_ids].tolist() if idf else None
        if sentences:
            rows, sentence_bounds = concatenated_rows(self.sentence_rows, wanted)
            sentence_similarity = (self.sentence_vectors[rows] @ vector).tolist()
        sources = dict(zip(around, self.passage_sources[around].tolist(), strict=True))
        found = {}
        for i, position in enumerate(positions):
            first, last = token_bounds[i], token_bounds[i + 1]
            found[position] = CandidateFeatures(
                passage=self.passage_list[position],
                terms=terms[first:last],
                starts=starts[first:last],
                ends=ends[first:last],
                idf=idfs[first:last] if idf else None,
                similarity=similarity[position],
                beside=similarity_beside(position, sources, similarity),
                sentence_similarity=(
                    sentence_similarity[sentence_bounds[i] : sentence_bounds[i + 1]]
                    if sentences
                    else None
                ),
                links=self.links[position],
            )
        return found

    def passages(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions."""
        return {position: self.passage_list[position] for position in positions}

    def tokens(self, positions: Sequence[int]) -> dict[int, tuple[Token, ...]]:
        """The analysed terms of these passages, as the build found them."""
        return {position: self.postings.tokens(position) for position in positions}

    def known_words(self, words: Sequence[str]) -> set[str]:
        """Which of these lower-cased words the articles use as written (term lookups)."""
        with self.searcher() as searcher:
            return {word for word in words if searcher.doc_frequency("words", word)}

    def words_like(self, word: str) -> tuple[Sequence[str], Sequence[float]]:
        """The articles' words with the same first letter, and their frequencies."""
        return self.spelling_words.get(word[:1], ((), ()))

    def damage(self) -> str | None:
        """What changed in this generation's files since it was opened, or None."""
        try:
            stats = file_stats(self.folder)
        except OSError as exc:
            return f"generation {self.info.name} can no longer be read ({exc})"
        if stats != self.file_stats:
            return f"the files of generation {self.info.name} changed while it was served"
        return None

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


# What a layer's build never reads of its base (a write's builder opens it in part: about
# 2 s of the 3 s the Python docs' generation takes to open).
_READ_AT_FIRST_USE = ("links", "vectors", "sentence_vectors", "spelling_words")
# Their files, the bulk of a generation's bytes (the spelling words are in Whoosh's): an
# open not `whole` verifies the manifest without them (generations.verified_manifest).
DEFERRED_FILES = (LINKS, NEAREST, SENTENCE_VECTORS)


def open_whoosh(folder: Path) -> whoosh_index.Index:
    """The Whoosh index in a generation's folder, its files read, not mapped (a segment
    truncated under a worker must raise, not SIGBUS)."""
    return FileStorage(str(folder), supports_mmap=False).open_index()


def _read_passages(folder: Path, sources: dict[str, SourceDocument]) -> list[Passage]:
    """All passages by position, each's text taken from its source.

    Raises ValueError unless every source's text is the text its digest says (a manifest
    edited and sealed again passes the manifest's own digests, and citations would then
    lie) and every passage stands within it.
    """
    for source in sources.values():
        if hashlib.sha256(source.text.encode("utf-8")).hexdigest() != source.sha256:
            raise ValueError(
                f"the text of {source.name} is not the text the build indexed (edited after"
                " the build?): run `qa-service index --force`"
            )
    with np.load(folder / PASSAGES) as arrays:
        columns = {name: arrays[name].tolist() for name in arrays.files if name != "names"}
        names = arrays["names"].tolist()
    texts = [sources[name].text if name in sources else "" for name in names]
    rows = columns.pop("sentence_rows")
    spans = list(map(tuple, columns.pop("sentence_spans")))
    passages = []
    for i, (number, start, end, byte_start, byte_end, line_start, line_end, heading) in enumerate(
        zip(
            columns["source"], columns["start"], columns["end"], columns["byte_start"],
            columns["byte_end"], columns["line_start"], columns["line_end"], columns["heading"],
            strict=True,
        )
    ):  # fmt: skip
        if not 0 <= start < end <= len(texts[number]):
            raise ValueError(f"passage {i} does not stand in its source {names[number]!r}")
        passages.append(
            Passage(
                source=names[number],
                start=start,
                end=end,
                text=texts[number][start:end],
                byte_start=byte_start,
                byte_end=byte_end,
                line_start=line_start,
                line_end=line_end,
                sentences=tuple(spans[rows[i] : rows[i + 1]]),
                heading=heading,
            )
        )
    return passages


def _read_links(folder: Path) -> list[list[Link]]:
    rows = json.loads((folder / LINKS).read_text(encoding="utf-8"))
    return [links_from_rows(passage_links) for passage_links in rows]

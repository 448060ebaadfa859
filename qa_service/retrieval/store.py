"""What ranking and answering read from an index, whatever engine holds it.

A `PassageStore` is one generation of an index, opened: every read a question
makes goes through it, in a few batched calls (the question's terms, its
candidates, their features, the passages they cite), so an engine with a
network between it and its data makes few round trips. What is computed from
those reads (coverage, answer entities, scores, spans) is computed once, above
the engines (search.py). A new engine is a package under `engines/` that
implements this protocol and an `Engine` (and writes what `index.build` hands
it); tests/engines/ holds the conformance suite every engine runs.

Inside one generation a passage is known by its position (0 to
passage_count - 1, the order the build wrote them in); across generations by
`Passage.id` (its source and character span). Articles are known by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from qa_service.core.corroboration import Link
from qa_service.core.passages import Passage, Token
from qa_service.core.results import SourceDocument

from .nearest import VectorIndex
from .postings import Postings
from .semantic import SentenceEncoder

# How long a version of an article stays retrievable after no build holds it any more.
VERSIONS_DAYS = 365
SHA256 = re.compile(r"[0-9a-f]{64}")


class IndexUnavailable(RuntimeError):
    """No usable generation can be served (missing, damaged, or its engine unreachable)."""


@dataclass(frozen=True)
class PreparedIndex:
    """What a build computed from the articles, for an engine to write as one generation."""

    sources: list[dict]  # per article: name, title, publisher, date, url, passages, text
    passages: list[Passage]  # in position order
    postings: Postings  # every passage's analysed terms, every term's best passages
    links: list[list[Link]]  # by position
    vectors: VectorIndex  # the passages' embeddings
    sentence_vectors: np.ndarray  # every passage's sentences' embeddings, in turn
    boilerplate: frozenset[str]  # the lines taken for the sites' furniture, left out


@dataclass(frozen=True)
class Layer:
    """What a layered generation lies over (layered.py): a full build, less some articles."""

    base: str  # the full build's generation
    # The base's articles the layer replaces or deletes, with their positions [start, end).
    hidden: Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class GenerationInfo:
    """What identifies an opened generation, and the figures scoring needs from it."""

    name: str  # the generation's id, stable for its lifetime
    passage_count: int  # positions 0 to passage_count - 1
    mean_length: float  # the mean number of analysed terms of a passage (BM25's)
    boilerplate: frozenset[str]  # the lines the build took for the sites' furniture
    encoder: SentenceEncoder  # the model the passages' vectors came from, for questions

    @property
    def max_idf(self) -> float:
        """The idf of a term no passage holds: the most a term can weigh (Whoosh's formula)."""
        return math.log(max(self.passage_count, 1)) + 1  # (an empty layer holds no term)


@dataclass(frozen=True)
class Query:
    """What the first stages search by: analysed terms, a meaning, the sources allowed."""

    terms: Sequence[str]
    vector: np.ndarray | None  # the question's embedding; None: by words alone
    sources: Sequence[str] | None = None  # None: every source


@dataclass(frozen=True)
class Candidates:
    """The passages the first stages found, by position."""

    by_words: dict[int, float]  # BM25 score, best first
    by_meaning: list[int]  # nearest in meaning first


@dataclass(frozen=True)
class Terms:
    """What a generation knows of some analysed terms."""

    idf: dict[str, float]  # every term asked for; max_idf for a term no passage holds
    ids: dict[int, str]  # the ids passages hold them under (see CandidateFeatures.terms)


class CandidateFeatures(NamedTuple):
    """What a generation holds about one passage, for one question's vector (a named
    tuple: made for every candidate of every question, and cheaper than a dataclass)."""

    passage: Passage
    # The passage's analysed terms in order, as term ids, with their words' source offsets.
    terms: Sequence[int]
    starts: Sequence[int]
    ends: Sequence[int]
    idf: Sequence[float] | None  # of each of `terms`, when asked for
    similarity: float  # the cosine of the question's vector with the passage's
    beside: tuple[float, ...]  # the same for the passages before and after it in its source
    # The same for each of its sentences, in order, when asked for (only the passages an
    # answer cites need them: reading every candidate's sentence vectors cost a database
    # about as much as the rest of its row).
    sentence_similarity: list[float] | None
    links: Sequence[Link]  # passages of other sources stating the same facts


class PassageStore(Protocol):
    """One opened generation of an index: passages, their terms and vectors, their sources."""

    info: GenerationInfo
    sources: Mapping[str, SourceDocument]  # the article texts citations quote, by name

    def terms(self, terms: Sequence[str]) -> Terms:
        """The idf and ids of analysed terms."""

    def candidates(self, query: Query, limit: int) -> Candidates:
        """Up to `limit` passages by BM25 over the query's terms, and up to `limit` nearest
        its vector, within its sources."""

    def features(
        self,
        positions: Sequence[int],
        vector: np.ndarray,
        *,
        idf: bool = False,
        sentences: bool = False,
    ) -> dict[int, CandidateFeatures]:
        """What the second stage reads about these passages, in one call (with the idf of
        their terms if `idf`, their sentences' similarities if `sentences`)."""

    def passages(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions, read together."""

    def tokens(self, positions: Sequence[int]) -> dict[int, tuple[Token, ...]]:
        """These passages' analysed terms with the source offsets of their words."""

    def known_words(self, words: Sequence[str]) -> set[str]:
        """Which of these lower-cased words the articles use as written."""

    def words_like(self, word: str) -> tuple[Sequence[str], Sequence[float]]:
        """The words the articles use that could be a misspelt word's correction (at least
        those with its first letter and a length within two of its), with their frequencies."""

    def damage(self) -> str | None:
        """What makes this generation unfit to serve since it was opened, or None."""


def with_neighbours(positions: Sequence[int], count: int) -> list[int]:
    """These positions and the ones beside them (within 0 to count - 1), in order: what
    `CandidateFeatures.beside` compares."""
    wanted = {other for position in positions for other in (position - 1, position, position + 1)}
    return sorted(position for position in wanted if 0 <= position < count)


def similarity_beside(
    position: int, sources: Mapping[int, str], similarity: Mapping[int, float]
) -> tuple[float, ...]:
    """The similarities of the passages before and after `position` in its own source
    (`sources` and `similarity` hold those of `with_neighbours`)."""
    source = sources[position]
    return tuple(
        similarity[other]
        for other in (position - 1, position + 1)
        if other in similarity and sources[other] == source
    )


class Engine(Protocol):
    """Where an engine keeps an index's generations: how they are written, swapped and opened."""

    # Seconds after a generation is made current by which every process's next request
    # reads it (current_name may be remembered that long).
    seen_within: float
    # A folder of this machine where builds keep what the next build would otherwise
    # work out again (index/kept.py: texts' vectors, articles' lines), or None.
    kept_dir: Path | None

    def current_name(self) -> str | None:
        """The current generation's name (cheap: asked before every request), or None."""

    def unchanged(self, corpus_hash: str) -> tuple[str, int] | None:
        """The current generation's name and passage count if it was built from
        `corpus_hash` and is intact, else None."""

    def build_lock(self) -> AbstractContextManager[None]:
        """One build at a time, across processes."""

    def publish(self, prepared: PreparedIndex, corpus_hash: str, layer: Layer | None = None) -> str:
        """Write a new generation and make it current in one step; old ones go (but the
        bases of those kept). With `layer`, the generation is `prepared` over that base."""

    def open(self, reuse: PassageStore | None = None, *, whole: bool = True) -> PassageStore:
        """Open the current generation, or raise IndexUnavailable; a layered one takes its
        base from `reuse` (the generation opened before) when it lies over the same.
        Not `whole`: only for building a layer over it (terms, candidates by words,
        passages, tokens, sources); what else it holds may be read at first use."""

    def check(self) -> str:
        """The current generation's name if it can be served, else raise IndexUnavailable."""

    def version(self, sha256: str) -> SourceDocument | None:
        """An article's text as it was when some build indexed it, by the text's SHA-256;
        kept VERSIONS_DAYS after the last build that held it (always while current)."""

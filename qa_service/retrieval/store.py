"""What ranking and answering read from an index, whatever engine holds it.

A `PassageStore` is one generation of an index, opened: every read a question
makes goes through it, so a new engine is one module that implements it (and
writes what `index.build_index` hands it). `whoosh_store.WhooshGeneration` is
the first implementation.

Inside one generation a passage is known by its position (0 to
passage_count - 1, the order the build wrote them in); across generations by
`Passage.id` (its source and character span), which `position_of` maps back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa_service.core.corroboration import Link
from qa_service.core.passages import Passage, Token
from qa_service.core.results import SourceDocument

from .nearest import VectorIndex
from .postings import Postings

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


class PassageStore(Protocol):
    """One opened generation of an index: passages, their terms and vectors, their sources."""

    name: str  # the generation's id, stable for its lifetime
    sources: Mapping[str, SourceDocument]  # the article texts citations quote, by name
    passages: Sequence[Passage]  # by position
    links: Sequence[Sequence[Link]]  # by position: passages of other sources stating the same

    @property
    def passage_count(self) -> int:
        """How many passages the generation holds."""

    @property
    def max_idf(self) -> float:
        """The idf of a term no passage holds: the most a term can weigh."""

    @property
    def mean_length(self) -> float:
        """The mean number of analysed terms of a passage (BM25's average length)."""

    @property
    def boilerplate(self) -> frozenset[str]:
        """The lines the build took for the sites' furniture and left out."""

    def passages_at(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions, read together."""

    def position_of(self, passage_id: str) -> int | None:
        """The position of the passage with this stable id, or None."""

    def term_idf(self, term: str) -> float:
        """The idf of an analysed term (max_idf when no passage holds it)."""

    def term_ids(self, terms: Sequence[str]) -> dict[int, str]:
        """The ids of the terms the store holds, to compare with `token_columns`."""

    def token_columns(self, position: int) -> tuple[list[int], list[int], list[int]]:
        """A passage's analysed terms as term ids, with their words' source offsets."""

    def token_idf(self, term_ids: Sequence[int]) -> list[float]:
        """The idf of each term id."""

    def tokens(self, position: int) -> tuple[Token, ...]:
        """A passage's analysed terms with the source offsets of their words."""

    def best_passages(
        self, terms: Sequence[str], limit: int, sources: Sequence[str] | None = None
    ) -> dict[int, float]:
        """Up to `limit` passages by BM25 over `terms`, position to score; within `sources`."""

    def encode_question(self, question: str) -> np.ndarray:
        """A question's unit-length embedding, by the encoder the passages' vectors came from."""

    def nearest(
        self, vector: np.ndarray, limit: int, sources: Sequence[str] | None = None
    ) -> list[int]:
        """The positions of up to `limit` passages nearest in meaning, best first."""

    def similarity(self, positions: Sequence[int], vector: np.ndarray) -> np.ndarray:
        """The cosine of `vector` with each passage's embedding."""

    def sentence_similarity(self, position: int, vector: np.ndarray) -> list[float]:
        """The cosine of `vector` with each of a passage's sentences, in order."""

    def uses_word(self, word: str) -> bool:
        """Whether the articles use a lower-cased word as written."""

    def correction(self, word: str) -> str | None:
        """The articles' closest word to one they do not use, or None."""

    def damage(self) -> str | None:
        """What makes this generation unfit to serve since it was opened, or None."""


class Engine(Protocol):
    """Where an engine keeps an index's generations: how they are written, swapped and opened."""

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

    def open(self, reuse: PassageStore | None = None) -> PassageStore:
        """Open the current generation, or raise IndexUnavailable; a layered one takes its
        base from `reuse` (the generation opened before) when it lies over the same."""

    def check(self) -> str:
        """The current generation's name if it can be served, else raise IndexUnavailable."""

    def version(self, sha256: str) -> SourceDocument | None:
        """An article's text as it was when some build indexed it, by the text's SHA-256;
        kept VERSIONS_DAYS after the last build that held it (always while current)."""

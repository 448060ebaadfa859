"""A few changed articles over a full build: written in a second, read as one index.

Rebuilding a large index for one added or corrected article takes minutes
(encoding every passage is most of it). So a write that leaves most articles
as the last full build indexed them prepares only the articles that differ
from it: a *layer*, published as a generation that names its *base* (the full
build) and the base's articles it hides (replaced or deleted). `LayeredStore`
reads base and layer as one `PassageStore`: the base's positions first, then
the layer's; a hidden passage is never a candidate, a link target or a source.

Statistics. The layer's passages are scored with the whole corpus's figures
(postings.Surroundings: the base's document frequencies, recovered from its
idf, plus the layer's own), so its scores compare with the base's. The base's
precomputed scores keep the figures of its build, hidden passages included,
as Lucene counts deleted documents until a merge; the passages of the base
link to the layer's only after the next full build, which makes all exact
again. index.update_index starts one when the layer outgrows LAYER_SHARE of
its base; `qa-service index --force` starts one at any time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from qa_service.core.corpus import Article
from qa_service.core.corroboration import Link, link_passages
from qa_service.core.passages import Passage, Token
from qa_service.core.results import SourceDocument
from qa_service.retrieval.postings import Surroundings
from qa_service.retrieval.store import Layer, PassageStore

# A layer's term ids follow every id the base can hold.
TERM_OFFSET = 1 << 31
# Base passages a layer's passage is compared with for links: its best by BM25.
LINK_CANDIDATES = 20


def changed_articles(
    articles: Sequence[Article], base: PassageStore
) -> tuple[list[Article], dict[str, tuple[int, int]]]:
    """The articles that differ from what `base` indexed (new, or changed in text or
    metadata), and the base's articles they replace or that are gone, with their positions."""
    # Each source read once (an engine may read its text with it). A build writes an
    # article's passages together, in the order of its sources: its positions follow.
    indexed, ranges, start = {}, {}, 0
    for name, source in base.sources.items():
        indexed[name], ranges[name] = source, (start, start + source.passages)
        start += source.passages
    names = {article.name for article in articles}
    changed = [article for article in articles if _differs(article, indexed.get(article.name))]
    replaced = {article.name for article in changed}
    hidden = {name: span for name, span in ranges.items() if name not in names or name in replaced}
    return changed, hidden


def hidden_passages(hidden: Mapping[str, tuple[int, int]]) -> int:
    """How many of the base's passages the hidden articles hold."""
    return sum(end - start for start, end in hidden.values())


def idf_shift(base_passages: int, layer_passages: int) -> float:
    """What a term only the base holds gains in idf over base and layer together (one more ln)."""
    return math.log((base_passages + layer_passages) / max(base_passages, 1))


def full_build_of(store: PassageStore | None) -> PassageStore | None:
    """The full build a generation is, or lies over."""
    return store.base if isinstance(store, LayeredStore) else store


def _differs(article: Article, indexed: SourceDocument | None) -> bool:
    if indexed is None:
        return True
    now = (article.sha256, article.title, article.publisher, article.date, article.url)
    return now != (indexed.sha256, indexed.title, indexed.publisher, indexed.date, indexed.url)


def surroundings(base: PassageStore) -> Surroundings:
    """The base's figures, for scoring a layer's passages as part of the whole corpus."""
    count = base.passage_count

    def document_frequency(terms: Sequence[str]) -> np.ndarray:
        # idf = ln(N / (df + 1)) + 1, inverted; a term the base lacks has max_idf: df 0.
        idf = np.array([base.term_idf(term) for term in terms], dtype=np.float64)
        return np.maximum(np.rint(count / np.exp(idf - 1) - 1), 0).astype(np.int64)

    return Surroundings(count, base.mean_length, document_frequency)


def layer_links(
    passages: Sequence[Passage],
    tokens: Sequence[Sequence[Token]],
    idf,
    base: PassageStore,
    hidden: Mapping[str, tuple[int, int]],
) -> list[list[Link]]:
    """The links of a layer's passages, to each other and to the base's visible passages,
    by positions in the layered store (the layer's follow the base's)."""
    hidden_mask = _hidden_mask(base.passage_count, hidden)
    candidates: dict[int, None] = {}
    for passage_tokens in tokens:
        terms = list(dict.fromkeys(token.term for token in passage_tokens))
        for position in base.best_passages(terms, LINK_CANDIDATES):
            if not hidden_mask[position]:
                candidates[position] = None
    found = base.passages_at(list(candidates))
    others = [found[position] for position in candidates]
    links = link_passages(
        [*passages, *others], [*tokens, *(base.tokens(p) for p in candidates)], idf
    )
    layered = [base.passage_count + i for i in range(len(passages))] + list(candidates)
    return [
        [
            Link(layered[link.other], link.similarity, link.near_copy, link.conflicts)
            for link in passage_links
        ]
        for passage_links in links[: len(passages)]
    ]


def _hidden_mask(count: int, hidden: Mapping[str, tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(count, dtype=bool)
    for start, end in hidden.values():
        mask[start:end] = True
    return mask


class LayeredStore:
    """A layer over its base, read as one generation (a `store.PassageStore`)."""

    def __init__(self, name: str, base: PassageStore, layer: PassageStore, hidden: Layer):
        self.name = name
        self.base, self.layer = base, layer
        self.hidden = dict(hidden.hidden)
        self._base_count = base.passage_count
        self._hidden = _hidden_mask(self._base_count, self.hidden)
        self._hidden_count = hidden_passages(self.hidden)
        self._idf_shift = idf_shift(self._base_count, layer.passage_count)
        self.sources = _Sources(self)
        self.passages = _Joined(base.passages, layer.passages)
        self.links = _Joined(_VisibleLinks(base.links, self._hidden), layer.links)
        self.boilerplate = layer.boilerplate  # a layer's holds its base's (index.prepare_layer)
        self.mean_length = layer.mean_length  # the layer's were counted over both

    @property
    def passage_count(self) -> int:
        """Positions of base and layer (hidden ones included: they are never returned)."""
        return self._base_count + self.layer.passage_count

    @property
    def max_idf(self) -> float:
        """The idf of a term no passage holds."""
        return math.log(self.passage_count) + 1

    def _split(self, positions: Sequence[int]) -> tuple[list[int], list[int]]:
        base = [p for p in positions if p < self._base_count]
        return base, [p - self._base_count for p in positions if p >= self._base_count]

    def passages_at(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions, read together from each part."""
        base, layer = self._split(positions)
        found = dict(self.base.passages_at(base))
        found.update(
            (p + self._base_count, passage) for p, passage in self.layer.passages_at(layer).items()
        )
        return found

    def position_of(self, passage_id: str) -> int | None:
        """The position of the visible passage with this stable id, or None."""
        if (position := self.layer.position_of(passage_id)) is not None:
            return position + self._base_count
        position = self.base.position_of(passage_id)
        return None if position is None or self._hidden[position] else position

    def term_idf(self, term: str) -> float:
        """The idf of an analysed term over base and layer."""
        if self.layer.term_ids([term]):
            return self.layer.term_idf(term)
        return self.base.term_idf(term) + self._idf_shift

    def term_ids(self, terms: Sequence[str]) -> dict[int, str]:
        """The ids of the terms either part holds (the layer's after TERM_OFFSET)."""
        found = self.base.term_ids(terms)
        found.update((i + TERM_OFFSET, term) for i, term in self.layer.term_ids(terms).items())
        return found

    def token_columns(self, position: int) -> tuple[list[int], list[int], list[int]]:
        """A passage's analysed terms as term ids, with their words' source offsets."""
        if position < self._base_count:
            return self.base.token_columns(position)
        terms, starts, ends = self.layer.token_columns(position - self._base_count)
        return [term + TERM_OFFSET for term in terms], starts, ends

    def token_idf(self, term_ids: Sequence[int]) -> list[float]:
        """The idf of each term id: the layer's, or the base's over the whole corpus."""
        base = [i for i in term_ids if i < TERM_OFFSET]
        layer = [i - TERM_OFFSET for i in term_ids if i >= TERM_OFFSET]
        idf = dict(zip(base, (v + self._idf_shift for v in self.base.token_idf(base)), strict=True))
        idf.update(zip((i + TERM_OFFSET for i in layer), self.layer.token_idf(layer), strict=True))
        return [idf[i] for i in term_ids]

    def tokens(self, position: int) -> tuple[Token, ...]:
        """A passage's analysed terms with the source offsets of their words."""
        if position < self._base_count:
            return self.base.tokens(position)
        return self.layer.tokens(position - self._base_count)

    def _visible(self, scores: Mapping[int, float]) -> dict[int, float]:
        return {p: score for p, score in scores.items() if not self._hidden[p]}

    def _parts(self, sources: Sequence[str] | None) -> tuple[list[str] | None, list[str] | None]:
        """`sources` as each part knows them (None: all), or [] when a part holds none."""
        if not sources:
            return None, None
        return [s for s in sources if s in self.base.sources], [
            s for s in sources if s in self.layer.sources
        ]

    def best_passages(
        self, terms: Sequence[str], limit: int, sources: Sequence[str] | None = None
    ) -> dict[int, float]:
        """Up to `limit` visible passages by BM25 over `terms`, from both parts together."""
        in_base, in_layer = self._parts(sources)
        scores = {}
        if in_base is None or in_base:
            # Asked for as many more as are hidden, so that `limit` visible ones remain.
            found = self.base.best_passages(terms, limit + self._hidden_count, in_base)
            scores.update(self._visible(found))
        # The whole layer (it is small), then its sources: the layer's own search within
        # sources would score by the layer's figures alone.
        for p, score in self.layer.best_passages(terms, self.layer.passage_count).items():
            if in_layer is None or self.layer.passages[p].source in in_layer:
                scores[p + self._base_count] = score
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return dict(best)

    def encode_question(self, question: str) -> np.ndarray:
        """A question's unit-length embedding (the base's encoder: the layer's is the same)."""
        return self.base.encode_question(question)

    def nearest(
        self, vector: np.ndarray, limit: int, sources: Sequence[str] | None = None
    ) -> list[int]:
        """The positions of up to `limit` visible passages nearest in meaning, best first."""
        in_base, in_layer = self._parts(sources)
        positions = []
        if in_base is None or in_base:
            found = self.base.nearest(vector, limit + self._hidden_count, in_base)
            positions = [p for p in found if not self._hidden[p]][:limit]
        if in_layer is None or in_layer:
            found = self.layer.nearest(vector, limit, in_layer)
            positions += [p + self._base_count for p in found]
        similarity = self.similarity(positions, vector)
        order = sorted(range(len(positions)), key=lambda i: (-similarity[i], positions[i]))
        return [positions[i] for i in order[:limit]]

    def similarity(self, positions: Sequence[int], vector: np.ndarray) -> np.ndarray:
        """The cosine of `vector` with each passage's embedding."""
        base, layer = self._split(positions)
        found = {}
        if base:  # (an engine is not asked for nothing: an empty array has no integer type)
            found.update(zip(base, self.base.similarity(base, vector).tolist(), strict=True))
        if layer:
            similar = self.layer.similarity(layer, vector).tolist()
            found.update(zip((p + self._base_count for p in layer), similar, strict=True))
        return np.array([found[p] for p in positions], dtype=np.float32)

    def sentence_similarity(self, position: int, vector: np.ndarray) -> list[float]:
        """The cosine of `vector` with each of a passage's sentences, in order."""
        if position < self._base_count:
            return self.base.sentence_similarity(position, vector)
        return self.layer.sentence_similarity(position - self._base_count, vector)

    def uses_word(self, word: str) -> bool:
        """Whether the articles use a lower-cased word as written (the hidden ones' words
        count until the next full build)."""
        return self.layer.uses_word(word) or self.base.uses_word(word)

    def correction(self, word: str) -> str | None:
        """The closest word to one the articles lack: the base's (the layer's own words are
        offered after the next full build)."""
        return None if self.layer.uses_word(word) else self.base.correction(word)

    def damage(self) -> str | None:
        """What makes base or layer unfit to serve, or None."""
        return self.base.damage() or self.layer.damage()


class _Joined(Sequence):
    """Two sequences by position, the second's after the first's."""

    def __init__(self, first: Sequence, second: Sequence):
        self._first, self._second = first, second

    def __len__(self) -> int:
        return len(self._first) + len(self._second)

    def __getitem__(self, position):
        if not 0 <= position < len(self):
            raise IndexError(position)
        count = len(self._first)
        return self._first[position] if position < count else self._second[position - count]


class _VisibleLinks(Sequence):
    """The base's links, less those to hidden passages."""

    def __init__(self, links: Sequence[Sequence[Link]], hidden: np.ndarray):
        self._links, self._hidden = links, hidden

    def __len__(self) -> int:
        return len(self._links)

    def __getitem__(self, position):
        return [link for link in self._links[position] if not self._hidden[link.other]]


class _Sources(Mapping):
    """The articles by name: the layer's, then the base's it does not hide."""

    def __init__(self, store: LayeredStore):
        self._store = store

    def __getitem__(self, name: str) -> SourceDocument:
        if name in self._store.layer.sources:
            return self._store.layer.sources[name]
        if name in self._store.hidden:
            raise KeyError(name)
        return self._store.base.sources[name]

    def __iter__(self) -> Iterator[str]:
        hidden = self._store.hidden
        yield from (name for name in self._store.base.sources if name not in hidden)
        yield from self._store.layer.sources

    def __len__(self) -> int:
        base = self._store.base.sources
        return len(base) - len(self._store.hidden) + len(self._store.layer.sources)

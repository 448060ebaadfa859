"""A few changed articles over a full build: written in a second, read as one index.

Rebuilding a large index for one added or corrected article takes minutes
(encoding every passage is most of it). So a write that leaves most articles
as the last full build indexed them prepares only the articles that differ
from it, and those a change of the corpus's furniture splits otherwise (so the
passages served are a full build's of the folder, whatever writes led there):
a *layer*, published as a generation that names its *base* (the full build)
and the base's articles it hides (replaced or deleted). `LayeredStore` reads
base and layer as one `PassageStore`: the base's positions first, then the
layer's; a hidden passage is never a candidate, a link target or a source.

Statistics. The layer's passages are scored with the whole corpus's figures
(postings.Surroundings: the base's document frequencies, recovered from its
idf, plus the layer's own), so its scores compare with the base's. The base's
precomputed scores keep the figures of its build, hidden passages included,
as Lucene counts deleted documents until a merge; the passages of the base
link to the layer's only after the next full build, which makes all exact
again. index.build.update_index starts one when the layer outgrows LAYER_SHARE of
its base; `qa-service index --force` starts one at any time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from qa_service.core.corpus import Article
from qa_service.core.corroboration import Link, link_passages
from qa_service.core.furniture import line_keys
from qa_service.core.passages import Passage, Token
from qa_service.core.results import SourceDocument
from qa_service.retrieval.postings import Surroundings
from qa_service.retrieval.store import (
    CandidateFeatures,
    Candidates,
    GenerationInfo,
    Layer,
    PassageStore,
    Query,
    Terms,
)

# A layer's term ids follow every id the base can hold.
TERM_OFFSET = 1 << 31
# Base passages a layer's passage is compared with for links: its best by BM25.
LINK_CANDIDATES = 20


def changed_articles(
    articles: Sequence[Article], base: PassageStore, furniture: frozenset[str]
) -> tuple[list[Article], dict[str, tuple[int, int]]]:
    """The articles that differ from what `base` indexed (new, or changed in text or
    metadata) or that `furniture`, the whole corpus's now, splits otherwise than the base's
    did, and the base's articles they replace or that are gone, with their positions."""
    # Each source read once (an engine may read its text with it). A build writes an
    # article's passages together, in the order of its sources: its positions follow.
    indexed, ranges, start = {}, {}, 0
    for name, source in base.sources.items():
        indexed[name], ranges[name] = source, (start, start + source.passages)
        start += source.passages
    names = {article.name for article in articles}
    # A line that became furniture, or stopped being it, moves the passages of every
    # article holding it: those are split again, so the layer serves a full build's.
    moved = furniture ^ base.info.boilerplate
    changed = [
        article
        for article in articles
        if _differs(article, indexed.get(article.name))
        or not moved.isdisjoint(line_keys(article.text))
    ]
    replaced = {article.name for article in changed}
    hidden = {name: span for name, span in ranges.items() if name not in names or name in replaced}
    return changed, hidden


def hidden_passages(hidden: Mapping[str, tuple[int, int]]) -> int:
    """How many of the base's passages the hidden articles hold."""
    return sum(end - start for start, end in hidden.values())


def served_passages(base_passages: int, hidden: Mapping[str, tuple[int, int]], layer: int) -> int:
    """How many passages a layered generation serves: the base's it does not hide, and
    the layer's own."""
    return base_passages - hidden_passages(hidden) + layer


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


def surroundings(base: PassageStore, base_idf: Mapping[str, float]) -> Surroundings:
    """The base's figures, for scoring a layer's passages as part of the whole corpus
    (`base_idf`: the base's idf of the layer's terms, as `base.terms` gives it)."""
    count = base.info.passage_count

    def document_frequency(terms: Sequence[str]) -> np.ndarray:
        # idf = ln(N / (df + 1)) + 1, inverted; a term the base lacks has max_idf: df 0.
        idf = np.array([base_idf[term] for term in terms], dtype=np.float64)
        return np.maximum(np.rint(count / np.exp(idf - 1) - 1), 0).astype(np.int64)

    return Surroundings(count, base.info.mean_length, document_frequency)


def layer_links(
    passages: Sequence[Passage],
    tokens: Sequence[Sequence[Token]],
    idf,
    base: PassageStore,
    hidden: Mapping[str, tuple[int, int]],
) -> list[list[Link]]:
    """The links of a layer's passages, to each other and to the base's visible passages,
    by positions in the layered store (the layer's follow the base's)."""
    count = base.info.passage_count
    hidden_mask = _hidden_mask(count, hidden)
    candidates: dict[int, None] = {}
    for passage_tokens in tokens:
        terms = list(dict.fromkeys(token.term for token in passage_tokens))
        for position in base.candidates(Query(terms, None), LINK_CANDIDATES).by_words:
            if not hidden_mask[position]:
                candidates[position] = None
    found, found_tokens = base.passages(list(candidates)), base.tokens(list(candidates))
    others = [found[position] for position in candidates]
    links = link_passages(
        [*passages, *others], [*tokens, *(found_tokens[p] for p in candidates)], idf
    )
    layered = [count + i for i in range(len(passages))] + list(candidates)
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
        self.base, self.layer = base, layer
        self.hidden = dict(hidden.hidden)
        self._base_count = base.info.passage_count
        self._hidden = _hidden_mask(self._base_count, self.hidden)
        self._hidden_count = hidden_passages(self.hidden)
        self._idf_shift = idf_shift(self._base_count, layer.info.passage_count)
        self.info = GenerationInfo(
            name=name,
            # Positions of base and layer (hidden ones included: they are never returned).
            passage_count=self._base_count + layer.info.passage_count,
            mean_length=layer.info.mean_length,  # the layer's were counted over both
            boilerplate=layer.info.boilerplate,  # the whole corpus's (prepare_layer)
            encoder=base.info.encoder,  # the layer's is the same
        )
        self.sources = _Sources(self)

    def _split(self, positions: Sequence[int]) -> tuple[list[int], list[int]]:
        base = [p for p in positions if p < self._base_count]
        return base, [p - self._base_count for p in positions if p >= self._base_count]

    def terms(self, terms: Sequence[str]) -> Terms:
        """The idf of analysed terms over base and layer, and the ids either part holds them
        under (the layer's after TERM_OFFSET)."""
        base, layer = self.base.terms(terms), self.layer.terms(terms)
        in_layer = set(layer.ids.values())
        idf = {
            term: layer.idf[term] if term in in_layer else base.idf[term] + self._idf_shift
            for term in terms
        }
        ids = dict(base.ids)
        ids.update((i + TERM_OFFSET, term) for i, term in layer.ids.items())
        return Terms(idf, ids)

    def _parts(self, sources: Sequence[str] | None) -> tuple[list[str] | None, list[str] | None]:
        """`sources` as each part knows them (None: all), or [] when a part holds none."""
        if not sources:
            return None, None
        return [s for s in sources if s in self.base.sources], [
            s for s in sources if s in self.layer.sources
        ]

    def candidates(self, query: Query, limit: int) -> Candidates:
        """Up to `limit` visible passages by BM25 and by meaning, from both parts together."""
        in_base, in_layer = self._parts(query.sources)
        scores, nearest = {}, []
        if in_base is None or in_base:
            # Asked for as many more as are hidden, so that `limit` visible ones remain.
            found = self.base.candidates(
                Query(query.terms, query.vector, in_base), limit + self._hidden_count
            )
            scores.update((p, score) for p, score in found.by_words.items() if not self._hidden[p])
            nearest = [p for p in found.by_meaning if not self._hidden[p]][:limit]
        # The whole layer (it is small), then its sources: the layer's own search within
        # sources would score by the layer's figures alone.
        count = self.layer.info.passage_count
        by_words = self.layer.candidates(Query(query.terms, None), count).by_words
        passages = self.layer.passages(list(by_words))
        for p, score in by_words.items():
            if in_layer is None or passages[p].source in in_layer:
                scores[p + self._base_count] = score
        best = dict(sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit])
        if query.vector is None:
            return Candidates(best, [])
        if in_layer is None or in_layer:
            found = self.layer.candidates(Query((), query.vector, in_layer), limit).by_meaning
            if found:  # each part's come best first: only the two together need ordering
                nearest += [p + self._base_count for p in found]
                reads = self.features(nearest, query.vector)
                nearest.sort(key=lambda p: (-reads[p].similarity, p))
        return Candidates(best, nearest[:limit])

    def features(
        self,
        positions: Sequence[int],
        vector: np.ndarray,
        *,
        idf: bool = False,
        sentences: bool = False,
    ) -> dict[int, CandidateFeatures]:
        """What the second stage reads about these passages, from each part: the base's
        terms weighed over the whole corpus, its links to hidden passages left out."""
        in_base, in_layer = self._split(positions)
        found = {}
        for p, read in self.base.features(in_base, vector, idf=idf, sentences=sentences).items():
            shifted = None if read.idf is None else [v + self._idf_shift for v in read.idf]
            visible = [link for link in read.links if not self._hidden[link.other]]
            found[p] = read._replace(idf=shifted, links=visible)
        for p, read in self.layer.features(in_layer, vector, idf=idf, sentences=sentences).items():
            terms = [term + TERM_OFFSET for term in read.terms]
            found[p + self._base_count] = read._replace(terms=terms)
        return found

    def passages(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions, read together from each part."""
        base, layer = self._split(positions)
        found = dict(self.base.passages(base))
        found.update(
            (p + self._base_count, passage) for p, passage in self.layer.passages(layer).items()
        )
        return found

    def tokens(self, positions: Sequence[int]) -> dict[int, tuple[Token, ...]]:
        """These passages' analysed terms with the source offsets of their words."""
        base, layer = self._split(positions)
        found = dict(self.base.tokens(base))
        found.update((p + self._base_count, t) for p, t in self.layer.tokens(layer).items())
        return found

    def known_words(self, words: Sequence[str]) -> set[str]:
        """Which words either part uses (the hidden articles' count until the next full
        build)."""
        return self.layer.known_words(words) | self.base.known_words(words)

    def words_like(self, word: str) -> tuple[Sequence[str], Sequence[float]]:
        """The base's words close to a misspelt one (the layer's own words are offered after
        the next full build)."""
        return self.base.words_like(word)

    def damage(self) -> str | None:
        """What makes base or layer unfit to serve, or None."""
        return self.base.damage() or self.layer.damage()


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

"""What a question reads of the words in the index, laid out when the index is built.

Answering should cost about the same on five articles as on a documentation
set. Two things made it grow with the corpus: Whoosh's BM25 reads the whole
posting list of every question term (tens of thousands of entries for a
common word), and each candidate's text was analysed again to find its terms.
So the build stores, as flat numpy arrays:

- every passage's analysed terms (ids into the vocabulary) with the source
  offsets of their words: a candidate's terms are a slice, not a re-analysis;
- impact-ordered champion lists: for every term, the CHAMPIONS passages where
  its BM25 contribution is highest, best first. A question's lexical
  candidates are the passages on its terms' lists, scored by the sum of their
  contributions. That is exact BM25 for every term held by at most CHAMPIONS
  passages (every term of a small corpus); a commoner term adds only the
  passages it weighs most in, which are the ones that could reach the top.

Scores are Whoosh's BM25F for one field (B=0.75, K1=1.2, idf = log(N / (df + 1)) + 1,
passage lengths rounded to a byte as Whoosh stores them), so they agree with a
Whoosh search of the same index (used when a question is limited to some sources).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from whoosh.util.numeric import byte_to_length, length_to_byte

from qa_service.core.passages import Token

# Passages kept per term: a question of 8 terms reads at most 8 x 4,000 postings.
# On questions over the Python documentation (58,249 passages), the best passage
# by full BM25 comes first 99 % of the time with 4,000 (0.2 ms a question), 94 %
# with 2,000, 72 % with 400; Whoosh's search over whole lists took 10.6 ms.
CHAMPIONS = 4000
BM25_B = 0.75
BM25_K1 = 1.2
ARRAYS = "postings.npz"
VOCABULARY = "vocabulary.json"


@dataclass(frozen=True)
class Postings:
    """The analysed terms of every passage and every term's best passages."""

    vocabulary: list[str]
    idf: np.ndarray  # by term id
    # Passage d's tokens are rows token_rows[d] to token_rows[d + 1] of the token_* arrays.
    token_rows: np.ndarray
    token_terms: np.ndarray
    token_starts: np.ndarray
    token_ends: np.ndarray
    # Term t's champions are rows champion_rows[t] to champion_rows[t + 1], best first.
    champion_rows: np.ndarray
    champion_passages: np.ndarray
    champion_scores: np.ndarray
    # The mean number of terms of a passage over the corpus scored (a 0-d array).
    mean_length: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "term_ids", {term: i for i, term in enumerate(self.vocabulary)})

    def idf_of(self, term: str, unknown: float) -> float:
        """The idf of an analysed term, or `unknown` for a term no passage holds."""
        term_id = self.term_ids.get(term)
        return unknown if term_id is None else float(self.idf[term_id])

    def tokens(self, docnum: int) -> tuple[Token, ...]:
        """A passage's analysed terms with the source offsets of their words."""
        vocabulary = self.vocabulary
        return tuple(
            Token(vocabulary[term], start, end)
            for term, start, end in zip(*self.token_columns(docnum), strict=True)
        )

    def token_columns(self, docnum: int) -> tuple[list[int], list[int], list[int]]:
        """A passage's term ids, and the start and end offsets of their words: `tokens`
        without building an object per word (what ranking a candidate needs)."""
        first, last = self.token_rows[docnum], self.token_rows[docnum + 1]
        return (
            self.token_terms[first:last].tolist(),
            self.token_starts[first:last].tolist(),
            self.token_ends[first:last].tolist(),
        )

    def best_passages(self, terms: Sequence[str], limit: int) -> dict[int, float]:
        """Up to `limit` passages by BM25 over the terms' champion lists, best first."""
        rows = [
            (self.champion_rows[t], self.champion_rows[t + 1])
            for t in (self.term_ids.get(term) for term in terms)
            if t is not None
        ]
        if not rows:
            return {}
        passages = np.concatenate([self.champion_passages[a:b] for a, b in rows])
        scores = np.concatenate([self.champion_scores[a:b] for a, b in rows])
        found, where = np.unique(passages, return_inverse=True)
        totals = np.bincount(where, weights=scores)
        best = _best_first(totals, limit)
        return dict(zip(found[best].tolist(), totals[best].tolist(), strict=True))

    def save(self, folder: Path) -> None:
        """Write the arrays and the vocabulary into a generation's folder."""
        (folder / VOCABULARY).write_text(json.dumps(self.vocabulary), encoding="utf-8")
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        with open(folder / ARRAYS, "wb") as file:
            np.savez(file, **arrays)

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """Read what `save` wrote (into memory: a mapped file truncated under a worker kills it)."""
        vocabulary = json.loads((folder / VOCABULARY).read_text(encoding="utf-8"))
        with np.load(folder / ARRAYS) as arrays:
            return cls(vocabulary, **{name: arrays[name] for name in _ARRAY_FIELDS})


def _best_first(scores: np.ndarray, limit: int) -> np.ndarray:
    """The indices of the `limit` highest scores, best first, equal scores in index order
    (as Whoosh ranks documents): a stable sort of those that reach the limit-th score."""
    if len(scores) > limit:
        # Sorting only these is what makes this cheaper than sorting every passage found.
        reaching = np.flatnonzero(scores >= np.partition(scores, len(scores) - limit)[-limit])
        return reaching[np.argsort(-scores[reaching], kind="stable")][:limit]
    return np.argsort(-scores, kind="stable")


_ARRAY_FIELDS = (
    "idf",
    "token_rows",
    "token_terms",
    "token_starts",
    "token_ends",
    "champion_rows",
    "champion_passages",
    "champion_scores",
    "mean_length",
)


@dataclass(frozen=True)
class Surroundings:
    """The rest of the corpus some passages are scored within: a layer's base (layered.py).

    BM25 needs corpus-wide figures (how many passages hold a term, their mean
    length); passages indexed apart from the others must be scored with the
    whole corpus's, or their scores would not compare with the others'.
    """

    passages: int
    mean_length: float
    # How many of those passages hold each of these terms.
    document_frequency: Callable[[Sequence[str]], np.ndarray]


def stored_length(terms: int) -> int:
    """A passage's length as Whoosh stores it (rounded to fit one byte)."""
    return byte_to_length(length_to_byte(terms))


def bm25(idf, frequency, relative_length):
    """One term's BM25 contribution (numbers or numpy arrays alike); `relative_length`
    is the passage's stored length over the corpus's mean length."""
    return (
        idf * frequency * (BM25_K1 + 1)
        / (frequency + BM25_K1 * (1 - BM25_B + BM25_B * relative_length))
    )  # fmt: skip


def build_postings(
    tokens: Sequence[Sequence[Token]],
    *,
    champions: int = CHAMPIONS,
    surroundings: Surroundings | None = None,
) -> Postings:
    """The postings of passages whose analysed terms are `tokens` (by document number),
    scored as part of a larger corpus when `surroundings` describe the rest of it."""
    vocabulary = sorted({token.term for passage in tokens for token in passage})
    term_ids = {term: i for i, term in enumerate(vocabulary)}
    lengths = np.array([len(passage) for passage in tokens], dtype=np.int64)
    token_rows = np.concatenate([[0], np.cumsum(lengths)])
    flat = [token for passage in tokens for token in passage]
    token_terms = np.array([term_ids[token.term] for token in flat], dtype=np.int32)
    passage_of = np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)
    count = max(len(tokens), 1)

    # Term frequency of every (term, passage) pair, grouped by term.
    pairs, frequency = np.unique(
        token_terms.astype(np.int64) * count + passage_of, return_counts=True
    )
    pair_terms, pair_passages = np.divmod(pairs, count)
    document_frequency = np.bincount(pair_terms, minlength=len(vocabulary))
    corpus_size, corpus_frequency = count, document_frequency
    mean_length = lengths.sum() / count
    if surroundings is not None:
        corpus_size = len(tokens) + surroundings.passages
        corpus_frequency = document_frequency + surroundings.document_frequency(vocabulary)
        mean_length = (lengths.sum() + surroundings.mean_length * surroundings.passages) / (
            corpus_size or 1
        )
    idf = np.log(max(corpus_size, 1) / (corpus_frequency + 1)) + 1
    stored_lengths = np.array([stored_length(n) for n in lengths.tolist()])
    relative_length = stored_lengths[pair_passages] / (mean_length or 1)
    scores = bm25(idf[pair_terms], frequency, relative_length)
    # Within each term, best first; then keep the first `champions` of each.
    order = np.lexsort((pair_passages, -scores, pair_terms))
    term_starts = np.concatenate([[0], np.cumsum(document_frequency)])
    rank = np.arange(len(order)) - term_starts[pair_terms[order]]
    kept = order[rank < champions]
    return Postings(
        vocabulary=vocabulary,
        idf=idf.astype(np.float64),
        token_rows=token_rows,
        token_terms=token_terms,
        token_starts=np.array([token.start for token in flat], dtype=np.int32),
        token_ends=np.array([token.end for token in flat], dtype=np.int32),
        champion_rows=np.concatenate(
            [[0], np.cumsum(np.minimum(document_frequency, champions))]
        ).astype(np.int64),
        champion_passages=pair_passages[kept].astype(np.int32),
        champion_scores=scores[kept].astype(np.float32),
        mean_length=np.asarray(float(mean_length or 1.0)),
    )


def concatenated_rows(bounds: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The rows of `items` one after another, where item i has rows bounds[i] to
    bounds[i + 1]; and where each item's rows start in them (one more at the end)."""
    starts = bounds[items]
    lengths = bounds[items + 1] - starts
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return np.arange(offsets[-1]) + np.repeat(starts - offsets[:-1], lengths), offsets.tolist()

"""The passages nearest a question by meaning, at a cost that does not grow with the corpus.

Up to EXACT_LIMIT passages, the question's vector meets every passage's (one
matrix product, about a millisecond). Beyond that, the build clusters the
vectors (spherical k-means over about sqrt(N) centres) and stores them grouped
by cluster; a question meets the centres, then the passages of the nearest
clusters until PROBED passages are covered: an inverted-file index, as FAISS's
IndexIVFFlat. It is a few lines of numpy here because every worker must hold
the vectors once: the ranking reads any passage's vector, and a FAISS index
keeps its own copy.

Reading the probed passages' vectors is memory-bound (10,000 rows of 384
floats, about 1 ms), so they are met in a projection on their PROJECTED
principal components (a third of the bytes) and only the RESCORED best of them
by their whole vectors: the same nearest passages, in half the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Exact below this many passages (and for any question limited to some sources).
EXACT_LIMIT = 20_000
# Passages a question meets beyond the exact limit, whatever the corpus size. On
# the Python documentation (58,249 passages, 241 clusters) and questions made
# from it, this finds the exact nearest passage 94.5 % of the time and 92 % of
# the exact ten nearest, in 0.6 ms (6,000: 92.5 % and 88.5 %; 3,000: 90 % and 83 %).
PROBED = 10_000
# On the Python documentation and questions made from it, the projection on 128
# components, the best 400 rescored, finds 90.5 % of the exact 50 nearest and
# 92.8 % of the exact 10 in 0.58 ms, as the whole vectors do (90.8 %, 92.8 %) in
# 1.19 ms (64 components: 83.9 % and 88.7 %; 96: 89.0 % and 91.9 %).
PROJECTED = 128
RESCORED = 400
KMEANS_ROUNDS = 8
# k-means learns its centres from a sample; every vector is then assigned.
KMEANS_SAMPLE = 30_000
ARRAYS = "nearest.npz"


@dataclass(frozen=True)
class VectorIndex:
    """Unit-length passage vectors grouped by cluster, with the clusters' centres."""

    # Row r holds the vector of passage order[r]; cluster c is rows cluster_rows[c] onwards.
    vectors: np.ndarray
    order: np.ndarray
    cluster_rows: np.ndarray
    # No rows when every passage is compared (a corpus within EXACT_LIMIT).
    centres: np.ndarray
    # The principal directions of the vectors (dimensions x PROJECTED), and each row's
    # vector projected on them, in the rows' order; no columns when exact.
    projection: np.ndarray
    projected: np.ndarray

    def __post_init__(self):
        position = np.empty(len(self.order), dtype=np.int64)
        position[self.order] = np.arange(len(self.order))
        object.__setattr__(self, "position", position)

    def __len__(self) -> int:
        return len(self.order)

    def similarity(self, docnums: np.ndarray, query: np.ndarray) -> np.ndarray:
        """The cosine of the query with each of the passages `docnums`."""
        return self.vectors[self.position[docnums]] @ query

    def nearest(
        self,
        query: np.ndarray,
        limit: int,
        allowed: np.ndarray | None = None,
        *,
        probed: int = PROBED,
    ) -> list[int]:
        """The document numbers of up to `limit` passages nearest `query`, nearest first.

        `allowed`, a boolean mask by document number, limits the search (exactly).
        """
        if allowed is not None:
            docnums = np.flatnonzero(allowed)
            similarity = self.similarity(docnums, query)
        elif not len(self.centres):
            docnums, similarity = self.order, self.vectors @ query
        else:
            nearest_clusters = probe(self.centres, np.diff(self.cluster_rows), query, probed)
            # A cluster's rows are contiguous: compare them in place, copying nothing.
            spans = [self.cluster_rows[c : c + 2] for c in nearest_clusters]
            rows = np.concatenate([np.arange(a, b) for a, b in spans])
            projected = query @ self.projection
            approximate = np.concatenate([self.projected[a:b] @ projected for a, b in spans])
            rows = rows[shortlist(approximate, limit)]
            docnums, similarity = self.order[rows], self.vectors[rows] @ query
        return best(docnums, similarity, limit)

    def save(self, folder: Path) -> None:
        """Write the index into a generation's folder."""
        with open(folder / ARRAYS, "wb") as file:
            np.savez(
                file,
                vectors=self.vectors,
                order=self.order,
                cluster_rows=self.cluster_rows,
                centres=self.centres,
                projection=self.projection,
                projected=self.projected,
            )

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        """Read what `save` wrote, into memory (a mapped file truncated under a worker kills it)."""
        with np.load(folder / ARRAYS) as arrays:
            return cls(**{name: arrays[name] for name in arrays.files})


def probe(
    centres: np.ndarray, sizes: np.ndarray, query: np.ndarray, probed: int = PROBED
) -> list[int]:
    """The clusters nearest `query`, nearest first, until they hold `probed` passages."""
    clusters = np.argsort(-(centres @ query))
    return clusters[: int(np.searchsorted(np.cumsum(sizes[clusters]), probed)) + 1].tolist()


def shortlist(approximate: np.ndarray, limit: int) -> np.ndarray:
    """Which of the probed passages to compare by their whole vectors: the RESCORED
    (and at least `limit`) of highest similarity in the projection."""
    rescored = max(RESCORED, limit)
    if len(approximate) <= rescored:
        return np.arange(len(approximate))
    return np.argpartition(-approximate, rescored)[:rescored]


def best(docnums: np.ndarray, similarity: np.ndarray, limit: int) -> list[int]:
    """The `limit` documents of highest similarity, best first (ties by document number)."""
    if len(similarity) > limit:
        top = np.argpartition(-similarity, limit)[:limit]
    else:
        top = np.arange(len(similarity))
    return docnums[top[np.lexsort((docnums[top], -similarity[top]))]].tolist()


def build_vector_index(vectors: np.ndarray, *, exact_limit: int = EXACT_LIMIT) -> VectorIndex:
    """Group unit-length `vectors` (by document number) for `VectorIndex.nearest`."""
    count, dimensions = vectors.shape
    if count <= exact_limit:
        return VectorIndex(
            vectors, np.arange(count), np.array([0, count]), np.zeros((0, dimensions)),
            np.zeros((dimensions, 0)), np.zeros((count, 0)),
        )  # fmt: skip
    rng = np.random.default_rng(0)  # a fixed seed: builds repeat
    sample = vectors[rng.choice(count, min(count, KMEANS_SAMPLE), replace=False)]
    centres = _spherical_kmeans(sample, round(count**0.5), rng)
    cluster = _assign(vectors, centres)
    order = np.argsort(cluster, kind="stable")
    cluster_rows = np.concatenate([[0], np.cumsum(np.bincount(cluster, minlength=len(centres)))])
    # The directions along which the vectors differ most, from the same sample.
    _, _, directions = np.linalg.svd(sample, full_matrices=False)
    projection = np.ascontiguousarray(directions[:PROJECTED].T, dtype=vectors.dtype)
    ordered = vectors[order]
    return VectorIndex(ordered, order, cluster_rows, centres, projection, ordered @ projection)


def _spherical_kmeans(sample: np.ndarray, clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-length centres of `clusters` groups of similar vectors in `sample`."""
    centres = sample[rng.choice(len(sample), clusters, replace=False)].copy()
    for _ in range(KMEANS_ROUNDS):
        cluster = _assign(sample, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, cluster, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        # A centre no vector chose stays where it was.
        centres = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centres)
    return centres.astype(sample.dtype)


def _assign(vectors: np.ndarray, centres: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """The nearest centre of every vector (in chunks, to bound the memory of the product)."""
    return np.concatenate(
        [
            np.argmax(vectors[i : i + chunk] @ centres.T, axis=1)
            for i in range(0, len(vectors), chunk)
        ]
    )

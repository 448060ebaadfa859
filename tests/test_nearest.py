"""The nearest passages by meaning: exact on small corpora, a bounded search on large ones."""

from __future__ import annotations

import numpy as np

from qa_service.retrieval.nearest import PROJECTED, VectorIndex, build_vector_index


def _clustered_unit_vectors(
    count: int, groups: int, seed: int = 1, dimensions: int = 64
) -> np.ndarray:
    """Vectors around `groups` topics, as passages of a documentation set are."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(groups, dimensions))
    noise = rng.normal(size=(count, dimensions))
    vectors = topics[rng.integers(groups, size=count)] + 0.6 * noise
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _exact(vectors: np.ndarray, query: np.ndarray, limit: int) -> list[int]:
    return np.argsort(-(vectors @ query), kind="stable")[:limit].tolist()


def test_below_the_limit_every_passage_is_compared():
    vectors = _clustered_unit_vectors(500, 10)
    index = build_vector_index(vectors, exact_limit=1000)
    for query in vectors[:20]:
        assert index.nearest(query, 10) == _exact(vectors, query, 10)


def test_beyond_the_limit_a_question_meets_a_bounded_share_and_finds_most_of_the_nearest():
    vectors = _clustered_unit_vectors(8000, 40)
    index = build_vector_index(vectors, exact_limit=1000)
    assert len(index.centres) == round(8000**0.5)
    # Every passage is in exactly one cluster, and its vector is kept.
    assert sorted(index.order.tolist()) == list(range(8000))
    np.testing.assert_array_equal(
        index.similarity(np.arange(8000), vectors[0]), vectors @ vectors[0]
    )
    queries = _clustered_unit_vectors(50, 40, seed=2)
    found = [
        len(set(index.nearest(query, 20, probed=800)) & set(_exact(vectors, query, 20))) / 20
        for query in queries
    ]
    assert np.mean(found) >= 0.8


def test_a_source_filter_is_exact(tmp_path):
    vectors = _clustered_unit_vectors(3000, 20)
    index = build_vector_index(vectors, exact_limit=1000)
    allowed = np.zeros(3000, dtype=bool)
    allowed[::7] = True
    query = vectors[5]
    nearest = index.nearest(query, 10, allowed)
    within = np.flatnonzero(allowed)
    assert nearest == within[np.argsort(-(vectors[within] @ query), kind="stable")[:10]].tolist()
    index.save(tmp_path)
    assert VectorIndex.load(tmp_path).nearest(query, 10, allowed) == nearest


def test_the_probed_passages_are_met_in_a_projection_and_the_best_by_their_whole_vectors():
    dimensions = PROJECTED + 64
    vectors = _clustered_unit_vectors(6000, 30, dimensions=dimensions)
    index = build_vector_index(vectors, exact_limit=1000)
    assert index.projection.shape == (dimensions, PROJECTED)
    assert index.projected.shape == (6000, PROJECTED)
    queries = _clustered_unit_vectors(40, 30, seed=3, dimensions=dimensions)
    found = []
    for query in queries:
        nearest = index.nearest(query, 20, probed=1500)
        # Ordered by the whole vectors' cosine, not the projection's.
        similarity = vectors[nearest] @ query
        assert np.all(np.diff(similarity) <= 1e-6)
        found.append(len(set(nearest) & set(_exact(vectors, query, 20))) / 20)
    assert np.mean(found) >= 0.8

"""The packaged sentence encoder: what it says about meaning, and how it is made."""

import numpy as np
import pytest

from qa_service.model.export import export_encoder
from qa_service.retrieval.semantic import MODEL_DIR, SentenceEncoder

TEXTS = [
    "Who is suing LinkedIn?",
    "A class action lawsuit was filed against the professional network.",
    "The recipe needs three ripe bananas and a cup of flour.",
]


@pytest.fixture(scope="module")
def packaged():
    return SentenceEncoder(MODEL_DIR)


def test_vectors_are_unit_length_rows_one_per_text(packaged):
    vectors = packaged.encode(TEXTS)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_related_texts_are_closer_than_unrelated_ones(packaged):
    question, related, unrelated = packaged.encode(TEXTS)
    assert question @ related > question @ unrelated + 0.2


def test_a_text_s_vector_does_not_depend_on_the_texts_beside_it(packaged):
    # A passage encoded in a build (among thousands, on several threads) must meet
    # a question encoded alone on the same terms.
    alone = packaged.encode([TEXTS[1]])[0]
    among_others = packaged.encode(TEXTS * 20, threads=2)
    assert np.array_equal(among_others[1], alone)
    assert np.array_equal(among_others[1 + len(TEXTS)], alone)


def test_exporting_from_the_published_weights_gives_the_packaged_model(packaged, tmp_path):
    """The file in the repository is what model/export.py makes (so it can be re-made)."""
    export_encoder(tmp_path)
    exported = SentenceEncoder(tmp_path).encode(TEXTS)
    assert np.all(np.sum(exported * packaged.encode(TEXTS), axis=1) > 0.999)
    assert (tmp_path / "tokenizer.json").read_bytes() == (MODEL_DIR / "tokenizer.json").read_bytes()

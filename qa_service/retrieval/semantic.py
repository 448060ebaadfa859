"""Sentence embeddings, for matching a question to passages by meaning rather than words.

The model is all-MiniLM-L6-v2 (a six-layer BERT trained for sentence
similarity), kept in this package as an int8 ONNX graph with its tokenizer
(qa_service/model; model/export.py writes it from the published weights):
nothing is downloaded or built at run time, and neither PyTorch nor the `onnx`
package is needed. Each index build copies the model into its generation, so
the generation's passage vectors and every question's vector come from one
file. A question costs about 1.1 ms on one thread.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# onnxruntime sends usage events to Microsoft and writes a device id under $HOME
# unless told not to; read when it is imported, so set before any import of it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

DIMENSIONS = 384
# What the model was trained with: longer passages are truncated (a passage is
# at most a few sentences, about 150 word pieces).
MAX_WORD_PIECES = 256
MODEL_DIR = Path(__file__).parent.parent / "model"
ENCODER_FILE = "encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"


class SentenceEncoder:
    """The encoder in `folder` (as write_encoder leaves it): texts in, unit-length rows out."""

    def __init__(self, folder: Path | str):
        import onnxruntime
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(MAX_WORD_PIECES)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        # One thread: the gunicorn workers already fill the cores, and a question's
        # dozen word pieces are too few to share out.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(folder / ENCODER_FILE), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], *, threads: int = 1) -> np.ndarray:
        """One unit-length float32 row per text, `threads` texts at a time.

        Each text is run on its own, never in a batch: the int8 graph scales its
        activations by the largest in the batch, so a batched text's vector
        depends on the texts beside it (cosine down to 0.98 with its vector
        alone, which is how questions are encoded). It is also no slower:
        there is no padding.
        """
        encodings = self.tokenizer.encode_batch(list(texts))
        vectors = np.zeros((len(encodings), DIMENSIONS), dtype=np.float32)
        if threads > 1:
            # onnxruntime lets go of the GIL while it runs.
            with ThreadPoolExecutor(threads) as pool:
                rows = list(pool.map(self._run, encodings, chunksize=64))
        else:
            rows = [self._run(encoding) for encoding in encodings]
        if rows:
            vectors[:] = rows
        return vectors

    def _run(self, encoding) -> np.ndarray:
        ids = np.array([encoding.ids], dtype=np.int64)
        (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        return vectors[0]


def write_encoder(folder: Path | str) -> None:
    """Copy the packaged model into `folder`: a generation encodes questions with its own."""
    for name in (ENCODER_FILE, TOKENIZER_FILE):
        shutil.copyfile(MODEL_DIR / name, Path(folder) / name)


@functools.cache
def model_id() -> str:
    """The model's name and a digest of its files: part of every index's content hash,
    since another model or graph means other vectors."""
    digest = hashlib.sha256()
    for name in (ENCODER_FILE, TOKENIZER_FILE):
        digest.update((MODEL_DIR / name).read_bytes())
    return f"all-MiniLM-L6-v2 int8 {digest.hexdigest()[:16]}"

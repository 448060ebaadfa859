"""What builds keep between them, so that a build works out only what is new.

**Vectors.**
Encoding is most of a build's time (about four fifths on the Python docs), and
a rebuild — `qa-service index --force`, a change to the splitter, the full
build that follows many writes, a layer prepared again at each write — meets
mostly texts an earlier build already encoded. The encoder gives a text the
same vector every time (it runs each text alone, see `SentenceEncoder.encode`),
so a kept vector is the vector: answers are the same with or without this.

Two parts are kept in one folder, each a NumPy file of (key, vector) rows
replaced whole: "full", exactly the texts of the last full build, and "layer",
exactly the texts of the last layer (a layer holds every article that differs
from its base). So the folder is bounded by what the index itself holds. A key
is a digest of the model's id and the text: another model never matches.

**Lines.** Every build, a write's layer too, finds the folder's furniture from
the lines of every article (core/furniture.py): about 5 s for the Python docs,
which a write's builder process would pay each time. `lines.json` keeps every
article's line keys by its text's digest: exactly the articles of the last
build.

The folder is a cache: when it cannot be read or written, builds work
everything out, as without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from qa_service.core.furniture import furniture_of, known_line_keys, remember_line_keys
from qa_service.retrieval.semantic import DIMENSIONS, MODEL_DIR, SentenceEncoder, model_id

log = logging.getLogger(__name__)

FULL = "full"
LAYER = "layer"
LINES = "lines.json"
_ROW = np.dtype([("key", "V16"), ("vector", "<f4", (DIMENSIONS,))])


def encode_texts(texts: Sequence[str], folder: Path | None, part: str) -> np.ndarray:
    """One unit-length row per text (as `SentenceEncoder.encode`), taking the vectors
    kept in `folder` and encoding the rest; then `part` keeps exactly these texts
    (a full build also drops the layer part, which its texts replace)."""
    keys = [_key(text) for text in texts]
    vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    kept = _read(folder, set(keys))
    missing = []
    for i, key in enumerate(keys):
        if key in kept:
            vectors[i] = kept[key]
        else:
            missing.append(i)
    if missing:
        started = time.perf_counter()
        encoder = SentenceEncoder(MODEL_DIR)
        vectors[missing] = encoder.encode([texts[i] for i in missing], threads=os.cpu_count() or 1)
        log.info(
            "encoded %d of %d distinct texts in %.1f s (the rest were kept)",
            len(missing),
            len(texts),
            time.perf_counter() - started,
        )
    if folder is not None:
        _keep(folder, part, keys, vectors)
    return vectors


def _key(text: str) -> bytes:
    return hashlib.blake2b(f"{model_id()}\0{text}".encode(), digest_size=16).digest()


def _read(folder: Path | None, wanted: set[bytes]) -> dict[bytes, np.ndarray]:
    """The kept vectors of the `wanted` keys, from both parts; none when the folder
    cannot be read. (A write's layer wants a few of the full build's 100,000 rows.)"""
    kept: dict[bytes, np.ndarray] = {}
    for part in (FULL, LAYER) if folder is not None else ():
        path = folder / f"{part}.npy"
        if not path.exists():
            continue
        try:
            rows = np.load(path, mmap_mode="r")
            if rows.dtype != _ROW:
                raise ValueError(f"rows of {rows.dtype}, not {_ROW}")
        except (OSError, ValueError) as error:
            log.warning("encoded texts in %s not read (%s): encoding them again", path, error)
            continue
        raw = rows["key"].tobytes()
        for row in range(len(rows)):
            key = raw[16 * row : 16 * row + 16]
            if key in wanted:
                kept[key] = np.array(rows["vector"][row])
    return kept


def _keep(folder: Path, part: str, keys: list[bytes], vectors: np.ndarray) -> None:
    """Replace `part` by these rows (a full build's rows replace the layer's too)."""
    rows = np.zeros(len(keys), dtype=_ROW)
    rows["key"] = np.frombuffer(b"".join(keys), dtype="V16")
    rows["vector"] = vectors
    if _replace(folder / f"{part}.npy", lambda file: np.save(file, rows)) and part == FULL:
        (folder / f"{LAYER}.npy").unlink(missing_ok=True)


def furniture(texts: Iterable[str], folder: Path | None) -> frozenset[str]:
    """`furniture_lines` of the articles' texts, their lines taken from `folder` and
    kept there for the next build."""
    read = {}
    if folder is not None and (folder / LINES).exists():
        try:
            read = json.loads((folder / LINES).read_text(encoding="utf-8"))
            if not isinstance(read, dict):
                raise ValueError(f"a JSON {type(read).__name__}, not an object")
            remember_line_keys(read)
        except (OSError, ValueError, TypeError) as error:
            read = {}
            log.warning("lines in %s not read (%s): working them out again", folder, error)
    known = known_line_keys(texts)
    if folder is not None and known.keys() != read.keys():
        rows = {digest: sorted(keys) for digest, keys in known.items()}
        _replace(folder / LINES, lambda file: file.write(json.dumps(rows).encode()))
    return furniture_of(known.values())


def _replace(path: Path, write: Callable[[IO[bytes]], object]) -> bool:
    """Replace the file at `path` by what `write` writes, in one step (a reader sees the
    old file or the new); False, and a warning, when it cannot be written."""
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as temp:
            write(temp)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp.name, 0o644)  # as any file of the index (a temporary file is the owner's)
        os.replace(temp.name, path)
        return True
    except OSError as error:
        log.warning("%s not kept (%s): the next build works it out again", path, error)
        if temp is not None:
            Path(temp.name).unlink(missing_ok=True)
        return False

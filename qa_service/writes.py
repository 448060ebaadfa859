"""Adding, replacing and deleting articles: the corpus folder first, then a new generation.

The corpus folder is the source of truth: a write changes its files (the
article, and its `<stem>.json` sidecar for the metadata) and then builds the
index from the folder, so the folder and what the API serves never disagree.
One writer at a time per folder (a second gets WriterBusy at once). A write
whose build fails puts the files back as they were: the current generation,
built from them, stays served.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .index import BuildReport, build_index
from .store import Engine

# Flat names the corpus reader indexes: no folders, no hidden files, a known suffix.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,126}\.(?:txt|md)")
METADATA = ("title", "publisher", "date", "url")


class WriterBusy(RuntimeError):
    """Another write to the same corpus is under way."""


class NotIndexable(ValueError):
    """The articles as the write would leave them cannot be indexed; nothing was written."""


def exists(corpus: Path, name: str) -> bool:
    """Whether the corpus holds an article by that name."""
    return bool(NAME.fullmatch(name)) and (Path(corpus) / name).is_file()


def put_source(
    corpus: Path, engine: Engine, name: str, text: str, metadata: Mapping[str, str]
) -> BuildReport:
    """Write (create or replace) an article and its metadata, then index the corpus."""
    corpus = Path(corpus)
    with _one_writer(corpus), _restored_on_failure(corpus, name):
        _replace(corpus / name, text)
        sidecar = (corpus / name).with_suffix(".json")
        if metadata:
            _replace(sidecar, json.dumps(dict(metadata), ensure_ascii=False))
        else:
            sidecar.unlink(missing_ok=True)
        return _build(corpus, engine)


def delete_source(corpus: Path, engine: Engine, name: str) -> BuildReport:
    """Remove an article and its metadata, then index the corpus."""
    corpus = Path(corpus)
    with _one_writer(corpus), _restored_on_failure(corpus, name):
        (corpus / name).unlink()
        (corpus / name).with_suffix(".json").unlink(missing_ok=True)
        return _build(corpus, engine)


def _build(corpus: Path, engine: Engine) -> BuildReport:
    try:
        return build_index(corpus, engine)
    except ValueError as exc:  # no articles, or no passages in them
        raise NotIndexable(
            "Not written: the articles would leave nothing to index (no article, or no "
            "sentence in them)."
        ) from exc


@contextlib.contextmanager
def _one_writer(corpus: Path) -> Iterator[None]:
    with open(corpus / ".write.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WriterBusy("another write to the articles is under way") from None
        yield


@contextlib.contextmanager
def _restored_on_failure(corpus: Path, name: str) -> Iterator[None]:
    """Put the article and its sidecar back as they were if the block raises."""
    paths = [corpus / name, (corpus / name).with_suffix(".json")]
    before = {path: path.read_bytes() if path.is_file() else None for path in paths}
    try:
        yield
    except BaseException:
        for path, content in before.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                _replace(path, content)
        raise


def _replace(path: Path, content: str | bytes) -> None:
    """Write a file in one rename, on disk before it replaces the old one."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    handle, partial = tempfile.mkstemp(prefix=".write-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise

"""Adding, replacing and deleting articles: the corpus folder first, then a new generation.

The corpus folder is the source of truth: a write changes its files (the
article, and its `<stem>.json` sidecar for the metadata) and then indexes the
folder (index.IndexHandle.update: the changed articles as a layer over the
last full build, in about a second), so the folder and what the API serves
never disagree.
One writer at a time per folder (a second gets WriterBusy at once).

A write is all or nothing, like a database's with a rollback journal: before
it changes a file it records the previous content of the article and its
sidecar in the journal (`.write.journal` in the folder, on disk first), and
removing the journal once the build has returned is its commit. A write whose
build fails puts the files back from the journal at once; one whose process
died is put back by `recover`, which the service calls at start
(gunicorn_conf.on_starting, which then indexes the folder again if need be).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from qa_service.core.corpus import ARTICLE_NAME

from .build import BuildReport
from .handle import IndexHandle

METADATA = ("title", "publisher", "date", "url")
# Hidden and without a .txt, .md or .json suffix: neither an article nor any article's sidecar.
JOURNAL = ".write.journal"
# A file being written, before its rename (hidden, and no article's nor the journal's name).
PARTIAL_PREFIX = ".write-"

log = logging.getLogger(__name__)


class WriterBusy(RuntimeError):
    """Another write to the same corpus is under way."""


class NotIndexable(ValueError):
    """The articles as the write would leave them cannot be indexed; nothing was written."""


def exists(corpus: Path, name: str) -> bool:
    """Whether the corpus holds an article by that name."""
    return bool(ARTICLE_NAME.fullmatch(name)) and (Path(corpus) / name).is_file()


def put_source(
    corpus: Path, index: IndexHandle, name: str, text: str, metadata: Mapping[str, str]
) -> BuildReport:
    """Write (create or replace) an article and its metadata, then index the corpus."""
    corpus = Path(corpus)
    with _one_writer(corpus), _journaled(corpus, name):
        _replace(corpus / name, text)
        sidecar = (corpus / name).with_suffix(".json")
        if metadata:
            _replace(sidecar, json.dumps(dict(metadata), ensure_ascii=False))
        else:
            sidecar.unlink(missing_ok=True)
        return _build(corpus, index)


def delete_source(corpus: Path, index: IndexHandle, name: str) -> BuildReport:
    """Remove an article and its metadata, then index the corpus."""
    corpus = Path(corpus)
    with _one_writer(corpus), _journaled(corpus, name):
        (corpus / name).unlink()
        (corpus / name).with_suffix(".json").unlink(missing_ok=True)
        return _build(corpus, index)


def recover(corpus: Path) -> bool:
    """Put back the files of a write whose process died before it committed; whether it did."""
    corpus = Path(corpus)
    # Without a journal no lock is taken: a read-only folder is left untouched.
    if not (corpus / JOURNAL).exists() and not _partial_files(corpus):
        return False
    try:
        with _one_writer(corpus):
            return _recovered(corpus)
    except WriterBusy:
        # The journal belongs to a write still under way in another process: it commits
        # or rolls back itself, and its lock goes with it if it dies.
        log.warning("not recovering %s: a write to it is under way", corpus)
        return False


def _build(corpus: Path, index: IndexHandle) -> BuildReport:
    try:
        return index.update(corpus)
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
def _journaled(corpus: Path, name: str) -> Iterator[None]:
    """Run the block as one write of the article and its sidecar: all of it, or none."""
    # A journal left by a write whose roll back failed (or by a service started without
    # `recover`) holds the only copy of the files before that write: never overwrite it.
    _recovered(corpus)
    files = [name, Path(name).with_suffix(".json").name]
    before = {file: _content(corpus / file) for file in files}
    _replace(corpus / JOURNAL, json.dumps({"files": before}))
    try:
        _sync_folder(corpus)  # the journal is on disk before any file changes
        yield
        _sync_folder(corpus)  # and the new files are, before it goes
    except BaseException:
        _roll_back(corpus)
        raise
    # The commit: from here the write stands whatever happens to this process.
    _remove_journal(corpus)


def _content(path: Path) -> str | None:
    """A file's bytes as base64 text (a hand-placed article need not be UTF-8), or None."""
    try:
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except FileNotFoundError:
        return None


def _recovered(corpus: Path) -> bool:
    """Roll back a write that died, for a caller holding the lock; whether there was one."""
    for partial in _partial_files(corpus):  # a file it was writing when it died
        partial.unlink(missing_ok=True)
    files = _roll_back(corpus)
    if files:
        log.warning("rolled back a write that did not finish: %s in %s", ", ".join(files), corpus)
    return bool(files)


def _roll_back(corpus: Path) -> list[str]:
    """Put the files the journal records back as they were, then remove it; their names.

    Each step can be done again: a process that dies here leaves the journal, and
    the next roll back starts over.
    """
    try:
        journal = json.loads((corpus / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    for name, content in journal["files"].items():
        if content is None:
            (corpus / name).unlink(missing_ok=True)
        else:
            _replace(corpus / name, base64.b64decode(content))
    _sync_folder(corpus)  # the files are back on disk before the journal goes
    _remove_journal(corpus)
    return list(journal["files"])


def _remove_journal(corpus: Path) -> None:
    (corpus / JOURNAL).unlink()
    _sync_folder(corpus)


def _sync_folder(folder: Path) -> None:
    """Make the renames and removals in a folder durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _partial_files(corpus: Path) -> list[Path]:
    return list(corpus.glob(PARTIAL_PREFIX + "*"))


def _replace(path: Path, content: str | bytes) -> None:
    """Write a file in one rename, on disk before it replaces the old one."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    handle, partial = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=path.parent)
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

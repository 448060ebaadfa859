"""One write to a corpus folder at a time, all or nothing: the writer's lock, the rollback
journal, and the record of how each write ended.

A write records the previous content of every file it will change in the journal
(`.write.journal` in the folder, on disk first); removing the journal is its commit.
Until then the files can be put back (`roll_back`), by the write itself when its
build fails, or by `recover_locked` when the process that held the lock died.
How each write ended (indexed, or refused and put back) is kept in
`.write.outcomes`, the newest OUTCOMES_KEPT, always before the journal goes, so a
write is at every moment either in the journal or in the outcomes.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

# Hidden and without a .txt, .md or .json suffix: neither an article nor any article's sidecar.
JOURNAL = ".write.journal"
OUTCOMES = ".write.outcomes"
LOCK = ".write.lock"
# A file being written, before its rename (hidden, and no article's nor the journal's name).
PARTIAL_PREFIX = ".write-"
# How many ended writes can be asked about (a write's status is asked for right after it).
OUTCOMES_KEPT = 100
STOPPED = "stopped"  # the outcome's error kind of a write whose process died

log = logging.getLogger(__name__)


class WriterBusy(RuntimeError):
    """Another write to the same corpus is under way."""


@dataclass(frozen=True)
class Write:
    """One write to the articles: its id (to ask how it ended), what it does, to which."""

    id: str
    action: str  # "add", "replace" or "delete"
    source: str


def take_lock(corpus: Path) -> IO:
    """The writer's lock of a corpus folder, held while the returned file stays open (in
    this process or in one it hands the file to); WriterBusy if another holds it."""
    lock = open(corpus / LOCK, "w")  # noqa: SIM115 (held beyond this function)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise WriterBusy("another write to the articles is under way") from None
    except BaseException:
        lock.close()
        raise
    return lock


def begin(corpus: Path, write: Write, files: Iterable[str]) -> None:
    """Journal the files a write will change, on disk before any of them changes (under
    the lock; a journal a dead write left is put back first)."""
    recover_locked(corpus)
    before = {file: _content(corpus / file) for file in dict.fromkeys(files)}
    replace(corpus / JOURNAL, json.dumps({"files": before, "write": asdict(write)}))
    sync_folder(corpus)


def commit(corpus: Path, write: Write, generation: str) -> None:
    """The write stands: its outcome kept, then the journal removed (with the files on disk)."""
    sync_folder(corpus)
    _keep_outcome(corpus, write, generation=generation)
    _remove_journal(corpus)


def refuse(corpus: Path, write: Write, kind: str, message: str) -> None:
    """The write is put back: its outcome (an error of `kind`) kept, then its files restored."""
    _keep_outcome(corpus, write, error={"kind": kind, "message": message})
    roll_back(corpus)


def journaled_write(corpus: Path) -> Write | None:
    """The write the journal is for (None without a journal, or for one from before ids)."""
    journal = _journal(corpus)
    return Write(**journal["write"]) if journal and "write" in journal else None


def outcome(corpus: Path, write_id: str) -> dict | None:
    """How the write `write_id` ended, while it is among the newest kept; else None."""
    return next((kept for kept in _outcomes(corpus) if kept["id"] == write_id), None)


def recover_locked(corpus: Path) -> bool:
    """Put back a write that died, for a caller holding the lock; whether there was one."""
    for partial in corpus.glob(PARTIAL_PREFIX + "*"):  # a file it was writing when it died
        partial.unlink(missing_ok=True)
    write = journaled_write(corpus)
    if write is not None:
        message = "The write stopped before it was indexed (its process ended); send it again."
        _keep_outcome(corpus, write, error={"kind": STOPPED, "message": message})
    files = roll_back(corpus)
    if files:
        log.warning("rolled back a write that did not finish: %s in %s", ", ".join(files), corpus)
    return bool(files)


def roll_back(corpus: Path) -> list[str]:
    """Put the files the journal records back as they were, then remove it; their names.

    Each step can be done again: a process that dies here leaves the journal, and
    the next roll back starts over.
    """
    journal = _journal(corpus)
    if journal is None:
        return []
    for name, content in journal["files"].items():
        if content is None:
            (corpus / name).unlink(missing_ok=True)
        else:
            replace(corpus / name, base64.b64decode(content))
    sync_folder(corpus)  # the files are back on disk before the journal goes
    _remove_journal(corpus)
    return list(journal["files"])


def has_leftovers(corpus: Path) -> bool:
    """Whether a write left a journal or a partial file (without, recovering needs no lock)."""
    return (corpus / JOURNAL).exists() or any(corpus.glob(PARTIAL_PREFIX + "*"))


def replace(path: Path, content: str | bytes) -> None:
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


def sync_folder(folder: Path) -> None:
    """Make the renames and removals in a folder durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _journal(corpus: Path) -> dict | None:
    try:
        return json.loads((corpus / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _content(path: Path) -> str | None:
    """A file's bytes as base64 text (a hand-placed article need not be UTF-8), or None."""
    try:
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except FileNotFoundError:
        return None


def _outcomes(corpus: Path) -> list[dict]:
    try:
        return json.loads((corpus / OUTCOMES).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # none yet, or not this format: start again
        return []


def _keep_outcome(corpus: Path, write: Write, **ended) -> None:
    """Add how a write ended to the outcomes (under the lock), keeping the newest only."""
    kept = [each for each in _outcomes(corpus) if each["id"] != write.id]
    ended = {"generation": None, "error": None, **ended, "finished_at": time.time()}
    kept.append({**asdict(write), **ended})
    replace(corpus / OUTCOMES, json.dumps(kept[-OUTCOMES_KEPT:], ensure_ascii=False))


def _remove_journal(corpus: Path) -> None:
    (corpus / JOURNAL).unlink()
    sync_folder(corpus)

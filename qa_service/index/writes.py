"""Adding, replacing and deleting articles: the corpus folder first, then a new generation.

The corpus folder is the source of truth: a write changes its files (the
article, and its `<name>.json` sidecar for the metadata) and then indexes the
folder (update_index: the changed articles as a layer over the last full build),
so the folder and what the API serves never disagree.

A write has two steps. `put_source` and `delete_source` take the writer's lock
(one writer at a time per folder: a second gets WriterBusy at once), journal the
files (journal.py), change them, and refuse what could not be indexed (no
article, or no sentence in any) by putting the files back: all in well under a
second, whatever the article's size. They return a `PendingWrite`, still
holding the lock, whose `index` builds and then commits the write, or puts the
files back when the build fails. `index_elsewhere` does that in a process of
its own (`python -c "…writes import main; main()"`), which the lock is handed
to: a build takes as long as encoding the article takes (seconds per hundred
kilobytes; a full build of a large corpus, minutes), longer than a web request
may last, and in a process of its own it encodes on every core and outlives
the web worker that started it. The builder then waits BUILDER_IDLE_SECONDS for
the next write, which is handed to it (handover.py) and indexed without a
process to start and a build to open again. How a write ended is kept
(`write_status`).

A write whose process died leaves its journal: `recover`, which the service
calls at start (gunicorn_conf.on_starting, which then indexes the folder again
if need be), and the next write put its files back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from qa_service.core.corpus import (
    ARTICLE_NAME,
    legacy_sidecar,
    old_style_sidecar,
    sidecar_path,
)
from qa_service.engines import configured_engine
from qa_service.retrieval.store import Engine, PassageStore

from . import handover, journal
from .build import BuildReport, indexable, update_index
from .journal import JOURNAL, OUTCOMES, OUTCOMES_KEPT, STOPPED, Write, WriterBusy

__all__ = [
    "JOURNAL",
    "OUTCOMES",
    "OUTCOMES_KEPT",
    "FAILED",
    "NOT_INDEXABLE",
    "NOT_WRITABLE",
    "STOPPED",
    "NotIndexable",
    "PendingWrite",
    "Write",
    "WriterBusy",
    "delete_source",
    "exists",
    "put_source",
    "recover",
    "write_status",
]

# The settings a build elsewhere needs: the engine's (engines.configured_engine) and the layer's.
BUILD_SETTINGS = (
    "BACKEND", "INDEX_DIR", "DATABASE_URL", "DATABASE_SHARDS", "VERSIONS_DAYS", "LAYER_SHARE",
    "BUILDER_IDLE_SECONDS",
)  # fmt: skip
NOT_INDEXABLE = "not-indexable"  # an outcome's error kind: see NotIndexable
NOT_WRITABLE = "not-writable"  # the files or the index could not be written (a full disk)
FAILED = "failed"  # anything else the build raised (its log says what)

log = logging.getLogger(__name__)


class NotIndexable(ValueError):
    """The articles as the write would leave them cannot be indexed; nothing was written."""

    def __init__(self) -> None:
        super().__init__(
            "Not written: the articles would leave nothing to index (no article, or no "
            "sentence in them)."
        )


def exists(corpus: Path, name: str) -> bool:
    """Whether the corpus holds an article by that name."""
    return bool(ARTICLE_NAME.fullmatch(name)) and (Path(corpus) / name).is_file()


def put_source(
    corpus: Path,
    name: str,
    text: str,
    metadata: Mapping[str, str],
    *,
    served: Mapping[str, int] | None = None,
) -> PendingWrite:
    """Write (create or replace) an article and its metadata, to be indexed.

    `served` is the passage count of each article the service serves (None if it
    serves none): when another article has passages, the corpus stays indexable
    and is not read again to find out.
    """
    corpus = Path(corpus)
    action = "replace" if exists(corpus, name) else "add"

    def change() -> None:
        journal.replace(corpus / name, text)
        if metadata:
            sidecar = json.dumps(dict(metadata), ensure_ascii=False)
            journal.replace(sidecar_path(corpus / name), sidecar)
        else:
            sidecar_path(corpus / name).unlink(missing_ok=True)

    return _pending(corpus, Write(uuid.uuid4().hex, action, name), change, served)


def delete_source(
    corpus: Path, name: str, *, served: Mapping[str, int] | None = None
) -> PendingWrite:
    """Remove an article and its metadata, to be indexed (`served` as for put_source)."""
    corpus = Path(corpus)

    def change() -> None:
        (corpus / name).unlink()
        sidecar_path(corpus / name).unlink(missing_ok=True)

    return _pending(corpus, Write(uuid.uuid4().hex, "delete", name), change, served)


class PendingWrite:
    """A write whose files are changed and journaled, holding the writer's lock until it
    is indexed and committed (or put back)."""

    def __init__(self, corpus: Path, write: Write, lock: IO):
        self.corpus, self.write, self._lock = corpus, write, lock

    def index(
        self,
        engine: Engine,
        *,
        layer_share: float | None = None,
        current: PassageStore | None = None,
    ) -> BuildReport:
        """Index the folder, then commit; on failure put the files back, keep why, raise.
        `current`: the generation this process has open (see update_index)."""
        try:
            try:
                options = {} if layer_share is None else {"layer_share": layer_share}
                report = update_index(self.corpus, engine, current, **options)
            except ValueError as exc:  # the build found no article, or no passage in them
                raise NotIndexable() from exc
            journal.commit(self.corpus, self.write, report.generation)
            return report
        except BaseException as exc:
            kind, message = _failure(exc)
            journal.refuse(self.corpus, self.write, kind, message)
            raise
        finally:
            self._lock.close()

    def index_elsewhere(self, settings: Mapping) -> None:
        """Index it in a process of its own (`main`), which the lock goes to: the builder
        of the write before while it waits for another (handover.py), else a new one."""
        job = {
            "corpus": str(self.corpus),
            "write": vars(self.write),
            "settings": {key: settings[key] for key in BUILD_SETTINGS},
            "code": handover.code_version(),
        }
        if handover.hand_over(self.corpus, job, self._lock.fileno()):
            self._lock.close()  # the builder's copy holds the lock now
            return
        job["lock"] = self._lock.fileno()
        try:
            builder = subprocess.Popen(
                [sys.executable, "-c", "from qa_service.index.writes import main; main()"],
                stdin=subprocess.PIPE,
                pass_fds=[self._lock.fileno()],
            )
            # On stdin, not in the arguments: the database URL may hold a password.
            with builder.stdin:
                builder.stdin.write(json.dumps(job, default=str).encode())
        except BaseException:
            journal.roll_back(self.corpus)
            self._lock.close()
            raise
        self._lock.close()  # the builder's copy holds the lock now
        # Reaped when it ends (a gevent worker's "thread" is a greenlet).
        threading.Thread(target=builder.wait, daemon=True).start()


def main() -> None:
    """The builder process of `PendingWrite.index_elsewhere`: index one write, or put it
    back; then, for BUILDER_IDLE_SECONDS after each, take the next one handed over."""
    code = handover.code_version()  # of the code this process imported
    job = json.load(sys.stdin)
    logging.basicConfig(
        level=logging.INFO, format="[%(process)d] [builder] %(levelname)s %(name)s: %(message)s"
    )
    corpus, settings = Path(job["corpus"]), job["settings"]
    engine = configured_engine(settings)
    lock = os.fdopen(job["lock"], "w")
    layer_share = float(settings["LAYER_SHARE"])
    # Opened here rather than inside the build, so that the next write finds it open.
    current = _layer_base(engine, None)
    current = _index_handed(corpus, job["write"], lock, engine, layer_share, current)
    idle = float(settings["BUILDER_IDLE_SECONDS"])
    if idle <= 0:
        return
    with handover.listening(corpus) as listener:
        while listener is not None:
            handed = handover.next_job(listener, idle, lambda other: _alike(other, job, code))
            if handed is None:
                return
            other, lock_fd = handed
            lock = os.fdopen(lock_fd, "w")
            current = _index_handed(corpus, other["write"], lock, engine, layer_share, current)


def _alike(other: dict, job: dict, code: str) -> bool:
    """Whether a job handed over is one this builder may index: a write to the same corpus,
    with the same settings, from a worker running the same code."""
    same = (other.get("corpus"), other.get("settings"), other.get("code"))
    return isinstance(other.get("write"), dict) and same == (job["corpus"], job["settings"], code)


def _index_handed(
    corpus: Path,
    write: dict,
    lock: IO,
    engine: Engine,
    layer_share: float,
    current: PassageStore | None,
) -> PassageStore | None:
    """Index one write handed to this builder; the generation then current, opened to lay
    the next write's layer over (None when it cannot be)."""
    with contextlib.suppress(Exception):  # kept in its outcome, and logged by index()
        pending = PendingWrite(corpus, Write(**write), lock)
        report = pending.index(engine, layer_share=layer_share, current=current)
        log.info("%s %s: indexed as %s", pending.write.action, pending.write.source, report)
    lock.close()  # index() closed it, unless the write could not even be read
    # Read now, between writes, not when the next one waits.
    return _layer_base(engine, current)


def _layer_base(engine: Engine, current: PassageStore | None) -> PassageStore | None:
    """The current generation opened to lay a write's layer over (its base taken from
    `current` when it is the same), or None when it cannot be opened."""
    if current is not None and current.damage():
        current = None
    try:
        return engine.open(reuse=current, whole=False)
    except Exception:  # noqa: BLE001 (the build opens it itself, and says why)
        return None


def write_status(corpus: Path, write_id: str) -> dict | None:
    """How a write stands: its outcome once it ended, else {"state": "indexing", …}; None
    for a write this folder does not know (or no longer: the newest are kept)."""
    corpus = Path(corpus)
    under_way = journal.journaled_write(corpus)
    # A journal whose lock nobody holds is a write whose builder died: it is put back.
    if under_way and under_way.id == write_id and not _put_back_if_abandoned(corpus):
        return {**vars(under_way), "state": "indexing", "generation": None, "error": None}
    ended = journal.outcome(corpus, write_id)
    if ended is None:
        return None
    return {**ended, "state": "failed" if ended["error"] else "done"}


def recover(corpus: Path) -> bool:
    """Put back the files of a write whose process died before it committed; whether it did."""
    corpus = Path(corpus)
    # Without a journal no lock is taken: a read-only folder is left untouched.
    if not journal.has_leftovers(corpus):
        return False
    try:
        lock = journal.take_lock(corpus)
    except WriterBusy:
        # The journal belongs to a write still under way in another process: it commits
        # or rolls back itself, and its lock goes with it if it dies.
        log.warning("not recovering %s: a write to it is under way", corpus)
        return False
    with lock:
        return journal.recover_locked(corpus)


def _pending(corpus: Path, write: Write, change, served: Mapping[str, int] | None):
    """Journal, change and check a write's files under the lock: a PendingWrite, or nothing
    changed."""
    lock = journal.take_lock(corpus)
    try:
        journal.begin(corpus, write, _files_of(corpus, write.source))
        try:
            reader = _old_style_reader(corpus, write.source)
            change()
            _settle_old_style_sidecar(corpus, write.source, reader)
            # Only when no other article has passages can the folder be left with
            # nothing to index: then it is read to see.
            others = any(count for other, count in (served or {}).items() if other != write.source)
            if not others and not indexable(corpus):
                raise NotIndexable()
        except BaseException:
            journal.roll_back(corpus)
            raise
    except BaseException:
        lock.close()
        raise
    return PendingWrite(corpus, write, lock)


def _files_of(corpus: Path, name: str) -> list[str]:
    """Every file a write of `name` may change: it, its sidecar, the old-style sidecar of
    its stem, and the sidecars of the articles sharing that stem."""
    stem = Path(name).with_suffix("")
    siblings = [f"{stem}{suffix}" for suffix in (".txt", ".md")]
    return [name, *(sidecar_path(Path(each)).name for each in {name, *siblings}), f"{stem}.json"]


def _old_style_reader(corpus: Path, name: str) -> Path | None:
    """The article that reads the old-style sidecar `<stem>.json` of `name`, if one does."""
    old_style = (corpus / name).with_suffix(".json")
    for suffix in (".txt", ".md"):
        article = old_style.with_suffix(suffix)
        own = sidecar_path(article).is_file()
        if article.is_file() and not own and legacy_sidecar(article) == old_style:
            return article if old_style.is_file() else None
    return None


def _settle_old_style_sidecar(corpus: Path, name: str, reader: Path | None) -> None:
    """After a write, an old-style `<stem>.json` speaks for no article it did not before.

    The other article that read it (x.md, when x.txt is added beside it and would
    make it shared) gets it as its own sidecar; otherwise it goes: the written
    article's metadata are what the write says, and one nobody read stays unread.
    """
    old_style = (corpus / name).with_suffix(".json")
    if reader is not None and reader.name != name:
        os.replace(old_style, sidecar_path(reader))
    elif old_style_sidecar(corpus / name) == old_style:  # not an article's own (x.txt.json)
        old_style.unlink(missing_ok=True)


def _put_back_if_abandoned(corpus: Path) -> bool:
    """Put back the journaled write if no process holds the lock (its builder died).

    Taken for an instant only: a write that comes in that instant gets WriterBusy,
    as it would have from the builder a moment before.
    """
    try:
        lock = journal.take_lock(corpus)
    except WriterBusy:
        return False
    with lock:
        journal.recover_locked(corpus)
    return True


def _failure(exc: BaseException) -> tuple[str, str]:
    """An outcome's error (kind, message) for what a build raised."""
    if isinstance(exc, NotIndexable):
        return NOT_INDEXABLE, str(exc)
    if isinstance(exc, OSError):
        log.error("indexing the write failed: %s", exc)
        return NOT_WRITABLE, "The articles cannot be written or indexed on this server now."
    if isinstance(exc, Exception):
        log.exception("indexing the write failed")
        return FAILED, "The write could not be indexed; the articles are as they were."
    return STOPPED, "The write stopped before it was indexed; send it again."

"""The life of an index folder's generations, whatever engine wrote their files.

Layout::

    index/
      current -> gen-20261126T212233-1a2b3c4d   (symlink, swapped atomically)
      gen-.../                                  (the engine's files + manifest.json)

A build writes a new generation into a hidden folder, renames it into place
and swaps `current` to it in one rename; old generations beyond the newest
few are deleted. Each generation is self-contained: its manifest holds the
article texts the offsets refer to, so a running service never cites text
from another build, and the size and SHA-256 of every other file, checked
when the generation is opened (a damaged generation is never served).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path

from qa_service.retrieval.store import IndexUnavailable

# Bump when what a generation holds changes, so that existing indexes are rebuilt.
INDEX_FORMAT = 13
CURRENT_LINK = "current"
MANIFEST = "manifest.json"
GENERATIONS_KEPT = 2  # the current one and the one before, for requests still reading it


def current_name(index_dir: Path) -> str | None:
    """The name of the current generation, or None when there is none."""
    try:
        return os.readlink(index_dir / CURRENT_LINK)
    except OSError:
        return None


def read_current_manifest(index_dir: Path) -> dict | None:
    """The manifest of the current generation, or None when there is none."""
    return read_manifest(index_dir / CURRENT_LINK)


def read_manifest(folder: Path) -> dict | None:
    """The manifest of the generation in `folder` (unchecked), or None when there is none."""
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# How often a build waiting for another one looks again.
LOCK_POLL_SECONDS = 0.05


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder, across processes.

    Waited for by polling, not by a blocking flock: in a gevent worker (a write that
    meets a `qa-service index` under way) a blocking call would stop every request of
    the worker until the other build ends; time.sleep lets them go on.
    """
    with open(index_dir / ".build.lock", "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(LOCK_POLL_SECONDS)
        yield


@contextlib.contextmanager
def new_generation(index_dir: Path, corpus_hash: str) -> Iterator[tuple[Path, str]]:
    """A folder to write a generation into, and the generation's name; on success it
    becomes the current one.

    Call under `build_lock`. If the block raises, the folder is removed and the
    current generation is untouched. The block finishes with `write_manifest`.
    """
    name = generation_name(corpus_hash)
    # Under the lock, a half-written generation is one a killed build left.
    for stale in index_dir.glob(".building-*"):
        shutil.rmtree(stale, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=index_dir))
    # mkdtemp makes it private; workers of other users (of the same group, in a
    # container) must read it and later builds delete it: as the umask allows.
    building.chmod(0o777 & ~_umask())
    try:
        yield building, name
        building.rename(index_dir / name)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _point_current_at(index_dir, name)
    _remove_old_generations(index_dir)


def generation_name(corpus_hash: str) -> str:
    """A new generation's name: when it was built, and which content (sortable by time)."""
    return f"gen-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{corpus_hash[:8]}"


def write_manifest(folder: Path, manifest: dict) -> None:
    """Seal a generation: its manifest, with the digests of every file written before it."""
    manifest = {**manifest, "format": INDEX_FORMAT, "files": _file_digests(folder)}
    manifest["built_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def verified_manifest(folder: Path, *, deferred: Collection[str] = ()) -> dict:
    """A generation's manifest, once every file it lists is as it was written; the files
    named in `deferred` by their size only, for `check_file` when they come to be read."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    check_manifest(folder, manifest, deferred)
    return manifest


def check_manifest(folder: Path, manifest: dict, deferred: Collection[str] = ()) -> None:
    """Raise ValueError unless the manifest and the files it lists are as the build wrote them
    (those in `deferred` by their size only)."""
    if manifest.get("format") != INDEX_FORMAT:
        raise ValueError(f"built by another version (format {manifest.get('format')})")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ValueError("the manifest was changed after the build")
    if damage := _damage(folder, manifest, frozenset(deferred)):
        raise ValueError(damage)


def check_file(folder: Path, name: str, recorded: dict) -> None:
    """Raise ValueError unless the file `name` is as `recorded` (its manifest entry) says."""
    if _file_digest(folder / name) != recorded:
        raise ValueError(f"files differ from the manifest: {name}")


def file_stats(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of every file: cheap to compare, no reading."""
    stats = []
    for path in sorted(folder.iterdir()):
        stat = path.stat()
        stats.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


@contextlib.contextmanager
def unavailable_unless_readable(index_dir: Path | str) -> Iterator[Path]:
    """Yield the current generation's folder; turn any failure into one clear IndexUnavailable.

    Its message, for the operator's log, names paths and causes: never show it to clients.
    """
    index_dir = Path(index_dir)
    # The full path, so the advice works from whichever folder it is followed.
    hint = f"run `qa-service index --index {index_dir.absolute()}`"
    link = index_dir / CURRENT_LINK
    if not link.exists():
        raise IndexUnavailable(f"no index at {index_dir.absolute()}: {hint}")
    folder = link.resolve()
    try:
        yield folder
    except Exception as exc:  # any damage to the files means the same to the caller
        raise IndexUnavailable(f"index at {folder} is unreadable ({exc}): {hint}") from exc


def _umask() -> int:
    # Read by setting it: there is no other way (builds run one at a time).
    previous = os.umask(0o022)
    os.umask(previous)
    return previous


def _point_current_at(index_dir: Path, generation: str) -> None:
    """Swap the `current` symlink in one atomic rename."""
    link = index_dir / f".{CURRENT_LINK}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(generation)
    os.replace(link, index_dir / CURRENT_LINK)


def _remove_old_generations(index_dir: Path) -> None:
    """Delete generations beyond the newest few, never the current one nor the full build
    a kept one is layered over."""
    current = os.readlink(index_dir / CURRENT_LINK)
    generations = sorted(
        (path.name for path in index_dir.glob("gen-*") if path.is_dir()), reverse=True
    )
    keep = set(generations[:GENERATIONS_KEPT]) | {current}
    for name in list(keep):
        if layer := (read_manifest(index_dir / name) or {}).get("layer"):
            keep.add(layer["base"])
    for name in generations:
        if name not in keep:
            shutil.rmtree(index_dir / name, ignore_errors=True)


def _file_digests(folder: Path, sizes_only: frozenset[str] = frozenset()) -> dict[str, dict]:
    """Size and SHA-256 of every file of a generation but its manifest (of those in
    `sizes_only`, the size alone)."""
    digests = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name != MANIFEST:
            if path.name in sizes_only:
                digests[path.name] = {"size": path.stat().st_size}
            else:
                digests[path.name] = _file_digest(path)
    return digests


def _file_digest(path: Path) -> dict:
    """A file's size and SHA-256, as a manifest lists them."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def _damage(folder: Path, manifest: dict, deferred: frozenset[str] = frozenset()) -> str | None:
    """What differs between a generation's files and its manifest, or None when nothing does
    (the files in `deferred` compared by their size only)."""
    recorded = manifest.get("files")
    if recorded is None:
        return "the manifest lists no files"
    # What the files must be: as recorded, the deferred ones by their size alone.
    expected = {
        name: {"size": entry.get("size")} if name in deferred else entry
        for name, entry in recorded.items()
    }
    found = _file_digests(folder, deferred)
    changed = sorted(
        name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name)
    )
    return f"files differ from the manifest: {', '.join(changed)}" if changed else None


def _manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's content (the article texts citations quote, the files)."""
    content = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

"""Handing a write to the builder process of the write before, while it still waits.

A builder (writes.main) that has indexed its write waits a while for the next
one, with the last build open and the model loaded: a write handed to it costs
the layer's own work only, where a new process first imports, loads and opens
all that (on the Python docs a write is answerable in about 0.9 s instead of 2.1).

The builder listens on a Unix socket in the corpus folder, beside the writer's
lock. A web worker that holds the lock for a new write connects, sends the job
with the lock's file descriptor (SCM_RIGHTS) and waits for TAKEN; it then
answers GO and lets its own copy of the lock go. Either side that does not hear
from the other in time gives up, so a job is indexed once: by the waiting
builder after GO, else by a new builder the worker starts. Both ends check that
the other runs as the same user (the job names the database, password and all).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

SOCKET = ".write.builder"
TAKEN, GO, OTHER = b"taken", b"go", b"other"
# A job is a few hundred bytes of JSON; anything longer is not one.
MAX_JOB_BYTES = 64 * 1024
# How long either side waits for the other's next message before giving up.
REPLY_SECONDS = 2.0
_CREDENTIALS = struct.Struct("3i")  # pid, uid, gid (Linux's struct ucred)


@functools.cache
def code_version() -> str:
    """What identifies the code this process runs (its package's files, by name, size and
    time): a builder takes only the jobs of a worker running the same, so a service
    restarted on new code never has a write indexed by a builder of the old."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            stat = path.stat()
            name = path.relative_to(package)
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def hand_over(corpus: Path, job: dict, lock_fd: int) -> bool:
    """Give `job` and the writer's lock to a builder waiting on `corpus`; whether it took
    them (if not, nothing was handed and the caller still holds the lock)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(REPLY_SECONDS)
            connection.connect(str(Path(corpus) / SOCKET))
            if not _same_user(connection):
                return False
            socket.send_fds(connection, [json.dumps(job, default=str).encode() + b"\n"], [lock_fd])
            if connection.recv(len(TAKEN)) != TAKEN:
                return False
            # Past this point the builder indexes the job once it hears GO, and only then.
            connection.sendall(GO)
            return True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def listening(corpus: Path) -> Iterator[socket.socket | None]:
    """A socket in `corpus` that the next write is handed over on (None when one cannot be
    made there: a read-only folder, a path too long for a socket); removed at the end."""
    path = Path(corpus) / SOCKET
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # One left by a builder that was killed, or by one that waits still: the next
        # write goes to this one, and that one ends when its wait does.
        path.unlink(missing_ok=True)
        listener.bind(str(path))
        os.chmod(path, 0o600)
        inode = path.stat().st_ino
        listener.listen()
    except OSError:
        listener.close()
        yield None
        return
    try:
        yield listener
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if path.stat().st_ino == inode:  # not a later builder's
                path.unlink()


def next_job(
    listener: socket.socket, timeout: float, accept: Callable[[dict], bool]
) -> tuple[dict, int] | None:
    """The next job handed over within `timeout` seconds that `accept` takes, with the
    writer's lock as a file descriptor now this process's; None when none came."""
    listener.settimeout(timeout)
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            return None
        fds: list[int] = []
        with connection:
            connection.settimeout(REPLY_SECONDS)
            try:
                data, fds = _receive(connection)
                job = json.loads(data)
                if not (_same_user(connection) and len(fds) == 1 and isinstance(job, dict)
                        and accept(job)):  # fmt: skip
                    connection.sendall(OTHER)
                    raise ValueError("not a job for this builder")
                connection.sendall(TAKEN)
                if connection.recv(len(GO)) != GO:
                    raise ValueError("the worker gave the job up")
                return job, fds[0]
            except (OSError, ValueError):
                for fd in fds:
                    os.close(fd)


def _receive(connection: socket.socket) -> tuple[bytes, list[int]]:
    """A line sent on `connection`, and the descriptors that came with it (closed if it
    fails: ValueError for a line cut short or longer than MAX_JOB_BYTES)."""
    data, fds, _, _ = socket.recv_fds(connection, MAX_JOB_BYTES, 1)
    try:
        received = bytearray(data)
        while data and not received.endswith(b"\n") and len(received) <= MAX_JOB_BYTES:
            data = connection.recv(MAX_JOB_BYTES)
            received += data
        if not received.endswith(b"\n") or len(received) > MAX_JOB_BYTES:
            raise ValueError("not a job: cut short or too long")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return bytes(received), list(fds)


def _same_user(connection: socket.socket) -> bool:
    """Whether the process at the other end runs as this one's user."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return _CREDENTIALS.unpack(credentials)[1] == os.getuid()

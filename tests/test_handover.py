"""Handing a write's job and lock to a builder that waits (qa_service.index.handover)."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time

import pytest

from qa_service.index import handover
from qa_service.index.handover import hand_over, listening, next_job

JOB = {"corpus": "/articles", "write": {"id": "1"}, "settings": {"BACKEND": "whoosh"}}


def _for_this_corpus(job: dict) -> bool:
    return job["corpus"] == JOB["corpus"]


@pytest.fixture()
def lock(tmp_path):
    """A writer's lock, held."""
    with open(tmp_path / ".write.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield held


def _waiting_builder(folder, accept=_for_this_corpus, timeout=10.0) -> dict:
    """A thread that waits on `folder` as a builder does; its result lands in the dict."""
    taken: dict = {}
    listener_ready = threading.Event()

    def wait() -> None:
        with listening(folder) as listener:
            listener_ready.set()
            taken["handed"] = next_job(listener, timeout, accept)

    taken["thread"] = threading.Thread(target=wait)
    taken["thread"].start()
    assert listener_ready.wait(5)
    return taken


def test_a_job_for_this_builder_is_handed_over_with_the_lock(tmp_path, lock):
    taken = _waiting_builder(tmp_path)
    assert hand_over(tmp_path, JOB, lock.fileno())
    taken["thread"].join(10)
    job, fd = taken["handed"]
    assert job == JOB
    # The same open file: closing the sender's copy leaves the lock held by the builder's.
    assert os.fstat(fd).st_ino == os.fstat(lock.fileno()).st_ino
    lock.close()
    with open(tmp_path / ".write.lock", "w") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    assert not (tmp_path / handover.SOCKET).exists()  # the builder's socket goes with it


def test_a_job_for_another_corpus_stays_with_the_worker(tmp_path, lock):
    taken = _waiting_builder(tmp_path, timeout=1.0)
    assert not hand_over(tmp_path, {**JOB, "corpus": "/elsewhere"}, lock.fileno())
    taken["thread"].join(10)
    assert taken["handed"] is None
    # The builder kept no copy of the lock: once the worker lets it go, it is free.
    lock.close()
    with open(tmp_path / ".write.lock", "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_builder_that_does_not_answer_in_time_gets_no_job(tmp_path, lock):
    # Listening but busy (opening a large build): the worker gives up, starts a builder of
    # its own, and the late one must not index the job as well.
    with listening(tmp_path) as listener:
        started = time.monotonic()
        assert not hand_over(tmp_path, JOB, lock.fileno())
        assert time.monotonic() - started < handover.REPLY_SECONDS + 2
        assert next_job(listener, 1.0, _for_this_corpus) is None
    lock.close()
    with open(tmp_path / ".write.lock", "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_no_builder_waiting_is_no_handover(tmp_path, lock):
    assert not hand_over(tmp_path, JOB, lock.fileno())
    # A socket left by a builder that was killed.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(tmp_path / handover.SOCKET))
    assert not hand_over(tmp_path, JOB, lock.fileno())


@pytest.mark.parametrize("sent", [b"not json\n", b"[1, 2]\n", b"{" + b" " * 70000, b'{"a": 1}'])
def test_what_is_not_a_job_is_refused_and_its_descriptors_closed(tmp_path, lock, sent):
    taken = _waiting_builder(tmp_path, timeout=3.0)
    before = len(os.listdir("/proc/self/fd"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(5)
        connection.connect(str(tmp_path / handover.SOCKET))
        socket.send_fds(connection, [sent], [lock.fileno()])
        if not sent.endswith(b"\n") and len(sent) < handover.MAX_JOB_BYTES:
            connection.shutdown(socket.SHUT_WR)  # cut short
        assert connection.recv(16) in (b"", handover.OTHER)
    taken["thread"].join(10)
    assert taken["handed"] is None
    assert len(os.listdir("/proc/self/fd")) <= before

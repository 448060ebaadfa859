"""Adding, replacing and deleting articles over the API, against real gunicorn."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from postgres_support import postgres_server
from support import ROOT, SERVERS, gunicorn_server

from qa_service.client import QAClient, QAClientError
from qa_service.config import ENVIRONMENT, load_config
from qa_service.core.passages import split_passages
from qa_service.index import IndexHandle, build_index, check_index, configured_engine
from qa_service.index.writes import JOURNAL, put_source, recover
from qa_service.web.keys import add_key

ARTICLE = (
    "Harbour Tunnel Opens\n\nThe new harbour tunnel opened to traffic on Friday after six years "
    "of work. It cost 2.4 billion dollars, the transport ministry said.\n"
)
REPLACEMENT = (
    "Harbour Tunnel Opens\n\nThe harbour tunnel opened on Saturday, a day late, after a "
    "signalling fault. Its cost rose to 2.6 billion dollars.\n"
)


# How writes are indexed: each a full build; each a layer over the last full build
# (index.update_index); and layers in PostgreSQL.
WRITE_MODES = {
    "whoosh, full builds": {"QA_LAYER_SHARE": "0"},
    "whoosh, layers": {"QA_LAYER_SHARE": "1"},
    "postgres, layers": {"QA_LAYER_SHARE": "1", "QA_BACKEND": "postgres"},
}


@pytest.fixture(scope="module", params=list(WRITE_MODES))
def writable(request, seeds_dir, tmp_path_factory):
    """A service over a copy of the seeds, with a writing key and a reading key."""
    with contextlib.ExitStack() as stack:
        settings = dict(WRITE_MODES[request.param])
        if settings.get("QA_BACKEND") == "postgres":
            settings["QA_DATABASE_URL"] = stack.enter_context(postgres_server()).url
        yield stack.enter_context(_writable_service(seeds_dir, tmp_path_factory, settings))


@contextlib.contextmanager
def _writable_service(seeds_dir, tmp_path_factory, settings: dict[str, str]):
    work = tmp_path_factory.mktemp("writes")
    corpus = work / "seeds"
    shutil.copytree(seeds_dir, corpus)
    build_index(corpus, configured_engine(load_config(_as_config(settings, work))))
    keys = work / "keys.json"
    secrets = {
        "desk": add_key(keys, "desk", ["read", "write"]),
        "reader": add_key(keys, "reader", ["read"]),
    }
    settings = {
        **settings,
        "QA_SEEDS": str(corpus),
        "QA_API_KEYS_FILE": str(keys),
        "QA_AUDIT_LOG": str(work / "audit.jsonl"),
    }
    with gunicorn_server(work / "index", work / "gunicorn.log", **settings) as url:
        yield {"url": url, "corpus": corpus, "work": work, "secrets": secrets}


def _as_config(settings: dict[str, str], work) -> dict:
    config = {ENVIRONMENT[name]: value for name, value in settings.items()}
    return {**config, "INDEX_DIR": work / "index"}


def _as(writable, key: str) -> dict:
    return {"Authorization": f"Bearer {writable['secrets'][key]}"}


# Every worker of a Whoosh index sees a write at its next request; of PostgreSQL within
# engines/postgres/engine.CHECK_SECONDS (the current generation's name is asked once a second).
VISIBLE_WITHIN = 3.0


def _visible(ask, seen):
    """The first response to `ask()` in which the write is `seen`, asking until VISIBLE_WITHIN."""
    deadline = time.monotonic() + VISIBLE_WITHIN
    while not seen(response := ask()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return response


def _first_answer(url: str, question: str, name: str, words: str) -> str:
    body = {"question": question, "sources": [name], "k": 1}

    def answered(response):
        return response.status_code == 200 and words in response.json()["passages"][0]["text"]

    response = _visible(lambda: httpx.post(url + "/api/v1/ask", json=body), answered)
    assert response.status_code == 200, response.text
    return response.json()["passages"][0]["text"]


def test_add_replace_delete_each_visible_in_answers_while_reads_go_on(writable):
    url, name = writable["url"], "harbour-tunnel.txt"
    failures, stop = [], threading.Event()

    def read_all_along():
        while not stop.is_set():
            response = httpx.post(url + "/api/v1/ask", json={"question": "What does it cost?"})
            if response.status_code != 200:
                failures.append(response.status_code)

    reader = threading.Thread(target=read_all_along)
    reader.start()
    try:
        added = httpx.post(
            url + "/api/v1/sources",
            json={"name": name, "text": ARTICLE, "publisher": "City Desk"},
            headers=_as(writable, "desk"),
        )
        assert added.status_code == 201, added.text
        assert added.headers["Location"].endswith(f"/api/v1/sources/{name}")
        assert added.json()["publisher"] == "City Desk"
        # What is now indexed of it, not what the request's worker held before the write.
        assert added.json()["passages"] == len(split_passages(ARTICLE, name)) > 1
        assert "2.4 billion" in _first_answer(
            url, "How much did the tunnel cost?", name, "2.4 billion"
        )

        replaced = httpx.put(
            f"{url}/api/v1/sources/{name}",
            content=REPLACEMENT.encode(),
            params={"title": "Harbour tunnel opens late"},
            headers={**_as(writable, "desk"), "Content-Type": "text/plain; charset=utf-8"},
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["title"] == "Harbour tunnel opens late"
        assert "2.6 billion" in _first_answer(
            url, "How much did the tunnel cost?", name, "2.6 billion"
        )
        assert (writable["corpus"] / name).read_text() == REPLACEMENT

        deleted = httpx.delete(f"{url}/api/v1/sources/{name}", headers=_as(writable, "desk"))
        assert deleted.status_code == 204
        gone = _visible(
            lambda: httpx.post(url + "/api/v1/ask", json={"question": "tunnel", "sources": [name]}),
            lambda response: response.status_code == 422,
        )
        assert gone.status_code == 422
        assert not (writable["corpus"] / name).exists()
    finally:
        stop.set()
        reader.join()
    assert failures == []
    audit = [
        json.loads(line) for line in (writable["work"] / "audit.jsonl").read_text().splitlines()
    ]
    assert [(a["action"], a["source"], a["key"], a["status"]) for a in audit[-3:]] == [
        ("add", name, "desk", 200), ("replace", name, "desk", 200), ("delete", name, "desk", 200),
    ]  # fmt: skip
    assert writable["secrets"]["desk"] not in (writable["work"] / "audit.jsonl").read_text()


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "key", "status"),
    [
        ("POST", "/api/v1/sources", {"json": {"name": "a.txt", "text": "Words."}}, None, 401),
        ("POST", "/api/v1/sources", {"json": {"name": "a.txt", "text": "Words."}}, "reader", 403),
        ("POST", "/api/v1/sources", {"json": {"name": "../a.txt", "text": "Words."}}, "desk", 422),
        ("POST", "/api/v1/sources", {"json": {"name": "a.pdf", "text": "Words."}}, "desk", 422),
        ("POST", "/api/v1/sources", {"json": {"name": "a.txt", "text": "  "}}, "desk", 422),
        ("POST", "/api/v1/sources", {"json": {"name": "a.txt", "text": "a\x00b"}}, "desk", 422),
        ("PUT", "/api/v1/sources/b.txt", {"content": b"\xff\xfe bad",
                                          "headers": {"Content-Type": "text/plain"}}, "desk", 422),
        ("PUT", "/api/v1/sources/b.txt", {"content": b"x" * (3 << 20),
                                          "headers": {"Content-Type": "text/plain"}}, "desk", 413),
        ("DELETE", "/api/v1/sources/none.txt", {}, "desk", 404),
        ("POST", "/api/v1/sources", {"json": {"name": "001_d2a1e9c52261be42.txt", "text": "x y."}},
         "desk", 409),
        ("POST", "/api/v1/sources", {"json": {"name": "a.txt\n", "text": "Words."}}, "desk", 422),
        ("POST", "/api/v1/sources", {"json": {"name": "a.txt", "text": "Words.",
                                              "url": "javascript:alert(1)"}}, "desk", 422),
        ("PUT", "/api/v1/sources/b.txt", {"json": {"text": "Words.",
                                                   "url": "data:text/html,<b>x</b>"}}, "desk", 422),
        ("PUT", "/api/v1/sources/b.txt", {"json": {"text": "Words.", "date": "last Friday"}},
         "desk", 422),
        ("PUT", "/api/v1/sources/b.txt", {"json": {"text": "Words.", "date": "2025-02-30"}},
         "desk", 422),
    ],
    ids=["no-key", "read-key", "traversal", "suffix", "blank", "nul", "not-utf8", "too-big",
         "unknown", "exists", "final-newline", "javascript-url", "data-url", "date-in-words",
         "no-such-day"],
)  # fmt: skip
def test_bad_writes_are_refused_and_change_nothing(writable, method, path, kwargs, key, status):
    before = sorted(p.name for p in writable["corpus"].iterdir())
    kwargs = dict(kwargs)  # the table's own dict is shared by every write mode
    headers = {**kwargs.pop("headers", {}), **(_as(writable, key) if key else {})}
    response = httpx.request(method, writable["url"] + path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["status"] == status
    assert sorted(p.name for p in writable["corpus"].iterdir()) == before


def test_the_client_writes_too(writable):
    with QAClient(writable["url"], api_key=writable["secrets"]["desk"]) as client:
        added = client.add_source("ferry.md", "The night ferry was cancelled.", title="Ferry")
        assert added.title == "Ferry" and added.passages >= 1
        assert client.replace_source("ferry.md", "The night ferry runs again.").title
        source = _visible(
            lambda: httpx.get(writable["url"] + "/api/v1/sources/ferry.md"),
            lambda response: "runs again" in response.text,
        )
        assert "runs again" in client.source("ferry.md", version=source.json()["sha256"]).text
        client.delete_source("ferry.md")

        def status_of_the_source() -> int:
            try:
                client.source("ferry.md")
            except QAClientError as error:
                return error.status
            return 200

        assert _visible(status_of_the_source, lambda status: status == 404) == 404


def test_a_folder_that_cannot_be_written_is_a_503_and_changes_nothing(writable):
    lock = writable["corpus"] / ".write.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()  # opening the lock file now fails, as on a read-only folder
    try:
        response = httpx.put(
            writable["url"] + "/api/v1/sources/d.txt",
            json={"text": "An article."},
            headers=_as(writable, "desk"),
        )
    finally:
        lock.rmdir()
    assert response.status_code == 503 and response.json()["error"]["status"] == 503
    assert not (writable["corpus"] / "d.txt").exists()


def test_a_second_writer_gets_409(writable):
    with open(writable["corpus"] / ".write.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        response = httpx.put(
            writable["url"] + "/api/v1/sources/c.txt",
            json={"text": "Another article."},
            headers=_as(writable, "desk"),
        )
    assert response.status_code == 409 and "under way" in response.json()["error"]["message"]
    assert not (writable["corpus"] / "c.txt").exists()


# A write cut short: the service killed while it builds, or a writer that dies once its
# build has swapped the new generation in (the narrow window before the commit).
DISTINCT = "zorblax"
# Large enough that the build takes a second or so: time to catch the write under way.
LONG_REPLACEMENT = "Zorblax Reactors\n\n" + "\n\n".join(
    f"The {DISTINCT} reactor number {i} delivered {i * 7} megawatts to district {i % 13}."
    for i in range(1000)
)
DIE_IN_BUILD = """
import json, os, signal, sys
from qa_service.index import writes
from qa_service.index import IndexHandle

corpus, index, name, text, publish = json.loads(sys.argv[1])
build = writes._build


def build_then_die(corpus, index):
    if publish:
        build(corpus, index)
    os.kill(os.getpid(), signal.SIGKILL)


writes._build = build_then_die
writes.put_source(corpus, IndexHandle(index), name, text, {})
"""


def _die_in_build(corpus, index, name: str, text: str, *, publish: bool) -> None:
    """Write an article in a process killed in the build (after it published, if `publish`)."""
    arguments = json.dumps([str(corpus), str(index), name, text, publish])
    died = subprocess.run([sys.executable, "-c", DIE_IN_BUILD, arguments], cwd=ROOT)
    assert died.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("name", "before"),
    [("a.txt", {"a.txt": "Old words.", "a.json": '{"title": "A"}'}), ("new.md", {})],
    ids=["replaced", "added"],
)
def test_recover_puts_back_the_files_of_a_write_that_died(tmp_path, name, before):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    for file, text in before.items():
        (corpus / file).write_text(text)
    _die_in_build(corpus, tmp_path / "index", name, "New words.", publish=False)
    assert (corpus / JOURNAL).exists() and (corpus / name).read_text() == "New words."

    assert recover(corpus) is True
    assert {path.name: path.read_text() for path in corpus.iterdir()} == {
        **before,
        ".write.lock": "",
    }
    assert recover(corpus) is False


def test_the_next_write_puts_back_the_files_of_one_that_died_first(tmp_path):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferry sails at noon.")
    _die_in_build(corpus, tmp_path / "index", "a.txt", "The ferry is cancelled.", publish=False)

    put_source(corpus, IndexHandle(tmp_path / "index"), "b.txt", "The bridge is closed.", {})
    assert (corpus / "a.txt").read_text() == "The ferry sails at noon."
    assert (corpus / "b.txt").read_text() == "The bridge is closed."
    assert not (corpus / JOURNAL).exists()


def test_recover_without_a_journal_touches_nothing(tmp_path):
    (tmp_path / "a.txt").write_text("Words.")
    assert recover(tmp_path) is False
    assert [path.name for path in tmp_path.iterdir()] == ["a.txt"]


def _workers(master: int) -> list[int]:
    """The processes whose parent is `master`."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name (field 2) is in parentheses and may hold spaces.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(stat.parent.name))
    return children


def _gone(pid: int) -> bool:
    """Whether a process has exited (its files, and the write lock, closed)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _kill_the_service_during_a_write(site, name: str, text: str) -> None:
    """Serve the site, replace an article over the API, and SIGKILL gunicorn (the master and
    its workers) once the article is replaced and before the write commits."""
    with gunicorn_server(site["index"], site["work"] / "first.log", **site["settings"]) as url:
        master = SERVERS[url].pid
        workers = _workers(master)
        article, replaced_inode = site["corpus"] / name, (site["corpus"] / name).stat().st_ino
        outcome = []

        def write():
            try:
                outcome.append(
                    httpx.put(
                        f"{url}/api/v1/sources/{name}",
                        content=text.encode(),
                        params={"title": "Zorblax"},
                        headers={**site["headers"], "Content-Type": "text/plain"},
                        timeout=60,
                    ).status_code
                )
            except httpx.TransportError as exc:
                outcome.append(type(exc).__name__)

        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 30
        while not ((site["corpus"] / JOURNAL).exists() and article.stat().st_ino != replaced_inode):
            assert time.monotonic() < deadline and writer.is_alive(), outcome
            time.sleep(0.002)
        # Stopped first, the master cannot fork a new worker while its workers die.
        os.kill(master, signal.SIGSTOP)
        for pid in [*workers, master]:
            os.kill(pid, signal.SIGKILL)
        writer.join()
    assert outcome != [200], "the write finished before the kill"
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers):  # the writer's lock dies with it
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _die_after_publishing(site, name: str, text: str) -> None:
    """Replace an article in a process killed after its build swapped the new generation in."""
    served = check_index(site["index"])
    _die_in_build(site["corpus"], site["index"], name, text, publish=True)
    assert check_index(site["index"]) != served  # the index holds the write


@pytest.fixture()
def site(seeds_dir, tmp_path):
    """A copy of the seeds indexed, and the settings of a service over it with a write key."""
    corpus = tmp_path / "seeds"
    shutil.copytree(seeds_dir, corpus)
    build_index(corpus, tmp_path / "index")
    keys = tmp_path / "keys.json"
    secret = add_key(keys, "desk", ["read", "write"])
    settings = {"QA_SEEDS": str(corpus), "QA_API_KEYS_FILE": str(keys)}
    return {
        "work": tmp_path,
        "corpus": corpus,
        "index": tmp_path / "index",
        "settings": settings,
        "headers": {"Authorization": f"Bearer {secret}"},
    }


@pytest.mark.parametrize(
    "crash", [_kill_the_service_during_a_write, _die_after_publishing], ids=["killed", "published"]
)
def test_a_write_cut_short_is_undone_when_the_service_starts(site, crash):
    corpus = site["corpus"]
    name = sorted(path.name for path in corpus.glob("*.txt"))[0]
    original = (corpus / name).read_text(encoding="utf-8")
    before = sorted(path.name for path in corpus.iterdir())

    crash(site, name, LONG_REPLACEMENT)
    # The crash really came in the middle: the write is on disk, not committed.
    assert (corpus / JOURNAL).exists()
    assert (corpus / name).read_text(encoding="utf-8") == LONG_REPLACEMENT

    log = site["work"] / "restarted.log"
    with gunicorn_server(site["index"], log, **site["settings"]) as url:
        question = {"question": f"What does the {DISTINCT} reactor deliver?"}
        asked = httpx.post(url + "/api/v1/ask", json=question)
        assert asked.status_code == 200 and asked.json()["passages"]
        assert not [p for p in asked.json()["passages"] if DISTINCT in p["text"].lower()]
        served = httpx.get(f"{url}/api/v1/sources/{name}")
        assert served.status_code == 200 and served.json()["text"] == original
    assert (corpus / name).read_text(encoding="utf-8") == original
    assert sorted(path.name for path in corpus.iterdir()) == sorted([*before, ".write.lock"])
    assert "rolled back a write that did not finish" in log.read_text()


def test_a_write_waiting_for_another_build_leaves_its_worker_answering(site):
    # `qa-service index` holds the build lock; a write to a one-worker service waits for it.
    with open(site["index"] / ".build.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with gunicorn_server(
            site["index"], site["work"] / "gunicorn.log", QA_WORKERS="1", **site["settings"]
        ) as url:
            written = {}
            writer = threading.Thread(
                target=lambda: written.update(
                    response=httpx.post(
                        url + "/api/v1/sources",
                        json={"name": "waiting.txt", "text": ARTICLE},
                        headers=site["headers"],
                        timeout=60,
                    )
                )
            )
            writer.start()
            time.sleep(1)  # the write is waiting for the lock by now
            for _ in range(5):
                asked = httpx.post(url + "/api/v1/ask", json={"question": "Who sued?"}, timeout=5)
                assert asked.status_code == 200
            assert writer.is_alive()
            fcntl.flock(held, fcntl.LOCK_UN)
            writer.join(timeout=60)
            assert written["response"].status_code == 201

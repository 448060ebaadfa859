"""Adding, replacing and deleting articles over the API, against real gunicorn."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
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
from wordfreq import top_n_list

from qa_service.client import QAClient, QAClientError, QAServerError, QAWriteTimeout
from qa_service.config import ENVIRONMENT, load_config
from qa_service.core.corpus import read_corpus
from qa_service.core.passages import split_passages
from qa_service.index import build_index, check_index, configured_engine, engine_for
from qa_service.index.writes import (
    JOURNAL,
    OUTCOMES,
    STOPPED,
    NotIndexable,
    delete_source,
    put_source,
    recover,
)
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


def _first_answer(url: str, question: str, name: str) -> str:
    response = httpx.post(
        url + "/api/v1/ask", json={"question": question, "sources": [name], "k": 1}
    )
    assert response.status_code == 200, response.text
    return response.json()["passages"][0]["text"]


# How long a test waits for a write of a few sentences to be indexed (it takes about a second).
INDEXED_WITHIN = 120.0


def _indexed(accepted: httpx.Response, headers: dict, within: float = INDEXED_WITHIN) -> dict:
    """The status of an accepted write (202) once it is no longer being indexed."""
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["state"] == "indexing"
    location = str(accepted.url.join(accepted.headers["Location"]))
    deadline, pause = time.monotonic() + within, 0.05
    while (status := httpx.get(location, headers=headers)).json().get("state") == "indexing":
        assert time.monotonic() < deadline, status.text
        time.sleep(pause)
        pause = min(pause * 2, 1.0)
    assert status.status_code == 200, status.text
    return status.json()


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
        assert added.headers["Location"] == f"/api/v1/writes/{added.json()['id']}"
        assert (added.json()["action"], added.json()["source"]) == ("add", name)
        done = _indexed(added, _as(writable, "desk"))
        assert (done["state"], done["error"]) == ("done", None)
        assert done["indexed"]["publisher"] == "City Desk"
        # What is now indexed of it, not what the request's worker held before the write.
        assert done["indexed"]["passages"] == len(split_passages(ARTICLE, name)) > 1
        # Done means every worker answers from it: no waiting.
        assert "2.4 billion" in _first_answer(url, "How much did the tunnel cost?", name)

        replaced = httpx.put(
            f"{url}/api/v1/sources/{name}",
            content=REPLACEMENT.encode(),
            params={"title": "Harbour tunnel opens late"},
            headers={**_as(writable, "desk"), "Content-Type": "text/plain; charset=utf-8"},
        )
        assert replaced.json()["action"] == "replace"
        done = _indexed(replaced, _as(writable, "desk"))
        assert done["indexed"]["title"] == "Harbour tunnel opens late"
        assert "2.6 billion" in _first_answer(url, "How much did the tunnel cost?", name)
        assert (writable["corpus"] / name).read_text() == REPLACEMENT

        deleted = httpx.delete(f"{url}/api/v1/sources/{name}", headers=_as(writable, "desk"))
        assert deleted.json()["action"] == "delete"
        done = _indexed(deleted, _as(writable, "desk"))
        assert (done["state"], done["indexed"]) == ("done", None)
        gone = httpx.post(url + "/api/v1/ask", json={"question": "tunnel", "sources": [name]})
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
        ("add", name, "desk", 202), ("replace", name, "desk", 202), ("delete", name, "desk", 202),
    ]  # fmt: skip
    assert all(len(a["write"]) == 32 for a in audit[-3:])
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
        replaced = client.replace_source("ferry.md", "The night ferry runs again.")
        assert "runs again" in client.source("ferry.md", version=replaced.sha256).text
        assert client.delete_source("ferry.md") is None
        with pytest.raises(QAClientError) as gone:
            client.source("ferry.md")
        assert gone.value.status == 404

        accepted = client.add_source("tram.md", "The tram line opens in May.", wait=False)
        assert (accepted.action, accepted.source, accepted.state) == ("add", "tram.md", "indexing")
        done = client.wait_for(accepted)
        assert (done.id, done.state, done.indexed.name) == (accepted.id, "done", "tram.md")
        assert client.write_status(accepted.id) == done
        client.delete_source("tram.md")


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
from qa_service.index import update_index, writes

corpus, index, name, text, publish = json.loads(sys.argv[1])
writes.put_source(corpus, name, text, {})
if publish:
    update_index(corpus, index)
os.kill(os.getpid(), signal.SIGKILL)
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
    files = {path.name: path.read_text() for path in corpus.iterdir()}
    (stopped,) = json.loads(files.pop(OUTCOMES))
    assert files == {**before, ".write.lock": ""}
    assert (stopped["source"], stopped["error"]["kind"]) == (name, STOPPED)
    assert recover(corpus) is False


def test_the_next_write_puts_back_the_files_of_one_that_died_first(tmp_path):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferry sails at noon.")
    _die_in_build(corpus, tmp_path / "index", "a.txt", "The ferry is cancelled.", publish=False)

    put_source(corpus, "b.txt", "The bridge is closed.", {}).index(engine_for(tmp_path / "index"))
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
    """Serve the site, replace an article over the API, and SIGKILL gunicorn (the master, its
    workers and the write's builder) once the article is replaced and before the write
    commits (its builder waits for the index's build lock, held here)."""
    with (
        open(site["index"] / ".build.lock", "w") as held,
        gunicorn_server(site["index"], site["work"] / "first.log", **site["settings"]) as url,
    ):
        fcntl.flock(held, fcntl.LOCK_EX)
        master = SERVERS[url].pid
        workers = _workers(master)
        accepted = httpx.put(
            f"{url}/api/v1/sources/{name}",
            content=text.encode(),
            params={"title": "Zorblax"},
            headers={**site["headers"], "Content-Type": "text/plain"},
        )
        assert accepted.status_code == 202, accepted.text
        (builder,) = [child for worker in workers for child in _workers(worker)]
        # Stopped first, the master cannot fork a new worker while its workers die.
        os.kill(master, signal.SIGSTOP)
        for pid in [builder, *workers, master]:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in [builder, *workers]):  # the write lock dies with them
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
    assert sorted(path.name for path in corpus.iterdir()) == sorted(
        [*before, ".write.lock", OUTCOMES]
    )
    (stopped,) = json.loads((corpus / OUTCOMES).read_text())
    assert (stopped["source"], stopped["error"]["kind"]) == (name, STOPPED)
    assert "rolled back a write that did not finish" in log.read_text()


def test_a_write_waiting_for_another_build_is_indexing_and_its_worker_answers(site):
    # `qa-service index` holds the build lock; a write to a one-worker service waits for it.
    with open(site["index"] / ".build.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with gunicorn_server(
            site["index"], site["work"] / "gunicorn.log", QA_WORKERS="1", **site["settings"]
        ) as url:
            accepted = httpx.post(
                url + "/api/v1/sources",
                json={"name": "waiting.txt", "text": ARTICLE},
                headers=site["headers"],
            )
            assert accepted.status_code == 202, accepted.text
            status = url + accepted.headers["Location"]
            for _ in range(5):
                asked = httpx.post(url + "/api/v1/ask", json={"question": "Who sued?"}, timeout=5)
                assert asked.status_code == 200
                assert httpx.get(status, headers=site["headers"]).json()["state"] == "indexing"
            busy = httpx.put(
                url + "/api/v1/sources/other.txt", json={"text": ARTICLE}, headers=site["headers"]
            )
            assert busy.status_code == 409 and "under way" in busy.json()["error"]["message"]
            fcntl.flock(held, fcntl.LOCK_UN)
            assert _indexed(accepted, site["headers"])["state"] == "done"


@pytest.mark.parametrize("idle, same_builder", [("30", True), ("0", False)])
def test_a_write_soon_after_another_goes_to_the_builder_still_waiting(site, idle, same_builder):
    log = site["work"] / "gunicorn.log"
    settings = {**site["settings"], "QA_BUILDER_IDLE_SECONDS": idle}
    with gunicorn_server(site["index"], log, **settings) as url:
        for name, text in (("first.txt", ARTICLE), ("second.txt", REPLACEMENT)):
            accepted = httpx.post(
                url + "/api/v1/sources", json={"name": name, "text": text}, headers=site["headers"]
            )
            assert _indexed(accepted, site["headers"])["state"] == "done"
            assert _first_answer(url, "When did the harbour tunnel open?", name) in text
    indexed = re.findall(r"\[(\d+)\] \[builder\] INFO [\w.]+: add (\S+): indexed", log.read_text())
    assert [name for _, name in indexed] == ["first.txt", "second.txt"]
    assert (indexed[0][0] == indexed[1][0]) is same_builder


def test_each_article_keeps_its_own_metadata_beside_one_of_the_same_stem(writable):
    headers = _as(writable, "desk")
    for name, publisher in [("x.txt", "Text Desk"), ("x.md", "Markdown Desk")]:
        written = httpx.put(
            f"{writable['url']}/api/v1/sources/{name}",
            json={"text": f"The {publisher} filed this on Monday.", "publisher": publisher},
            headers=headers,
        )
        assert _indexed(written, headers)["indexed"]["publisher"] == publisher
    deleted = httpx.delete(f"{writable['url']}/api/v1/sources/x.md", headers=headers)
    assert _indexed(deleted, headers)["state"] == "done"
    listed = httpx.get(writable["url"] + "/api/v1/sources").json()["sources"]
    assert [(s["name"], s["publisher"]) for s in listed if s["name"].startswith("x.")] == [
        ("x.txt", "Text Desk")
    ]
    assert json.loads((writable["corpus"] / "x.txt.json").read_text()) == {"publisher": "Text Desk"}
    deleted = httpx.delete(f"{writable['url']}/api/v1/sources/x.txt", headers=headers)
    assert _indexed(deleted, headers)["state"] == "done"


@pytest.mark.parametrize(
    ("before", "write", "after"),
    [
        ({"x.md": "M", "x.json": "Old"}, ("put", "x.txt", None),
         {"x.md": "M", "x.md.json": "Old", "x.txt": "T"}),
        ({"x.md": "M", "x.json": "Old"}, ("put", "x.md", None), {"x.md": "T"}),
        ({"x.md": "M", "x.json": "Old"}, ("put", "x.md", {"title": "New"}),
         {"x.md": "T", "x.md.json": "New"}),
        ({"x.md": "M", "x.txt": "T", "x.json": "Shared"}, ("delete", "x.txt", None),
         {"x.md": "M"}),
        ({"x.md": "M", "x.txt": "T", "x.txt.json": "Own"}, ("delete", "x.md", None),
         {"x.txt": "T", "x.txt.json": "Own"}),
    ],
    ids=["added-beside", "replaced", "replaced-with-metadata", "shared-one-deleted",
         "own-sidecar-stays"],
)  # fmt: skip
def test_a_write_leaves_an_old_style_sidecar_to_no_article_it_did_not_speak_for(
    tmp_path, before, write, after
):
    """A folder from before `x.txt.json`: what each article reads stays as it was, but for
    the article written."""
    corpus = tmp_path / "articles"
    corpus.mkdir()
    (corpus / "other.txt").write_text("The ferry sails at noon.")  # so the folder stays indexable
    for name, content in before.items():
        text = json.dumps({"title": content}) if name.endswith(".json") else content
        (corpus / name).write_text(text)
    action, name, metadata = write
    if action == "put":
        pending = put_source(corpus, name, "T", metadata or {}, served={"other.txt": 1})
    else:
        pending = delete_source(corpus, name, served={"other.txt": 1})
    pending.index(engine_for(tmp_path / "index"))
    files = {p.name: p.read_text() for p in corpus.iterdir() if not p.name.startswith(".")}
    del files["other.txt"]
    titles = {n: json.loads(t)["title"] if n.endswith(".json") else t for n, t in files.items()}
    assert titles == after
    # The metadata each article reads: those of after.
    read = {article.name: article.title for article in read_corpus(corpus)}
    for name in [n for n in after if not n.endswith(".json")]:
        assert read[name] == after.get(f"{name}.json", after[name])


@pytest.mark.parametrize(
    ("articles", "write"),
    [
        ({"only.txt": "The ferry sails at noon."},
         lambda corpus: delete_source(corpus, "only.txt")),
        ({"only.txt": "The ferry sails at noon."},
         lambda corpus: put_source(corpus, "only.txt", "```\ncode\n```\n", {})),
    ],
    ids=["last-article", "no-sentence"],
)  # fmt: skip
def test_a_write_that_leaves_nothing_to_index_is_refused_before_it_is_accepted(
    tmp_path, articles, write
):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    for name, text in articles.items():
        (corpus / name).write_text(text)
    with pytest.raises(NotIndexable):
        write(corpus)
    assert {p.name: p.read_text() for p in corpus.iterdir()} == {**articles, ".write.lock": ""}


def test_a_write_whose_builder_died_is_put_back_and_says_so(site):
    with open(site["index"] / ".build.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the builder waits: it is killed before it builds
        log = site["work"] / "gunicorn.log"
        with gunicorn_server(site["index"], log, **site["settings"]) as url:
            secret = site["headers"]["Authorization"].split()[1]
            with QAClient(url, api_key=secret, write_timeout=0.5) as client:
                accepted = client.add_source("doomed.txt", ARTICLE, wait=False)
                with pytest.raises(QAWriteTimeout) as waited:
                    client.wait_for(accepted)
                assert waited.value.write.state == "indexing"
                (builder,) = [c for w in _workers(SERVERS[url].pid) for c in _workers(w)]
                os.kill(builder, signal.SIGKILL)
                with pytest.raises(QAServerError) as failed:
                    client.wait_for(accepted)
    assert failed.value.status == 503
    assert "send it again" in failed.value.message
    assert not (site["corpus"] / "doomed.txt").exists()
    assert not (site["corpus"] / JOURNAL).exists()


def _prose(size: int, seed: int, fact: str) -> str:
    """About `size` bytes of varied sentences from common English words (so they make
    passages, and no line repeats), with `fact` in the middle."""
    rng = random.Random(seed)
    words = [word for word in top_n_list("en", 5000) if word.isalpha() and len(word) > 2]
    paragraphs, length = [], 0
    while length < size:
        sentences = [
            " ".join(rng.choices(words, k=rng.randint(8, 20))).capitalize()
            + f" in {rng.randint(1800, 2024)}."
            for _ in range(rng.randint(2, 5))
        ]
        paragraphs.append(" ".join(sentences))
        length += len(paragraphs[-1]) + 2
    paragraphs.insert(len(paragraphs) // 2, fact)
    text = "The Quillfeather Chronicle\n\n" + "\n\n".join(paragraphs) + "\n"
    return text.encode()[:size].decode("utf-8", "ignore").rsplit(" ", 1)[0] + ".\n"


@pytest.fixture(scope="module", params=["whoosh", "postgres"])
def large_writes(request, seeds_dir, tmp_path_factory):
    """A service over a copy of the seeds, writes indexed as they are by default."""
    with contextlib.ExitStack() as stack:
        settings = {}
        if request.param == "postgres":
            settings["QA_BACKEND"] = "postgres"
            settings["QA_DATABASE_URL"] = stack.enter_context(postgres_server()).url
        yield stack.enter_context(_writable_service(seeds_dir, tmp_path_factory, settings))


# The largest article a write takes (QA_MAX_SOURCE_BYTES), sent as text/plain.
LARGEST = load_config()["MAX_SOURCE_BYTES"]
# Indexing 2 MiB of prose (some 9,000 passages and 20,000 sentences to encode) takes
# minutes on two cores.
LARGEST_INDEXED_WITHIN = 1800.0


def test_the_largest_article_is_added_replaced_and_deleted(large_writes):
    url, headers, name = large_writes["url"], _as(large_writes, "desk"), "quillfeather.txt"
    question = "How many meteors did the Quillfeather observatory record?"
    for seed, meteors in [(1, "4,211"), (2, "5,312")]:
        fact = f"The Quillfeather observatory recorded {meteors} meteors in one night."
        text = _prose(LARGEST, seed, fact)
        assert LARGEST - 100 < len(text.encode()) <= LARGEST
        written = httpx.put(
            f"{url}/api/v1/sources/{name}",
            content=text.encode(),
            headers={**headers, "Content-Type": "text/plain; charset=utf-8"},
            timeout=30,
        )
        done = _indexed(written, headers, within=LARGEST_INDEXED_WITHIN)
        assert (done["state"], done["error"]) == ("done", None), done
        assert done["indexed"]["passages"] > 1000
        assert meteors in _first_answer(url, question, name)
    deleted = httpx.delete(f"{url}/api/v1/sources/{name}", headers=headers)
    done = _indexed(deleted, headers, within=LARGEST_INDEXED_WITHIN)
    assert (done["state"], done["error"]) == ("done", None), done
    gone = httpx.post(url + "/api/v1/ask", json={"question": question, "sources": [name]})
    assert gone.status_code == 422

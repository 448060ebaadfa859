"""Adding, replacing and deleting articles over the API, against real gunicorn."""

from __future__ import annotations

import fcntl
import json
import shutil
import threading

import httpx
import pytest
from support import gunicorn_server

from qa_service.client import QAClient, QAClientError
from qa_service.index import build_index
from qa_service.keys import add_key

ARTICLE = (
    "Harbour Tunnel Opens\n\nThe new harbour tunnel opened to traffic on Friday after six years "
    "of work. It cost 2.4 billion dollars, the transport ministry said.\n"
)
REPLACEMENT = (
    "Harbour Tunnel Opens\n\nThe harbour tunnel opened on Saturday, a day late, after a "
    "signalling fault. Its cost rose to 2.6 billion dollars.\n"
)


@pytest.fixture(scope="module")
def writable(seeds_dir, tmp_path_factory):
    """A service over a copy of the seeds, with a writing key and a reading key."""
    work = tmp_path_factory.mktemp("writes")
    corpus = work / "seeds"
    shutil.copytree(seeds_dir, corpus)
    build_index(corpus, work / "index")
    keys = work / "keys.json"
    secrets = {
        "desk": add_key(keys, "desk", ["read", "write"]),
        "reader": add_key(keys, "reader", ["read"]),
    }
    settings = {
        "QA_SEEDS": str(corpus),
        "QA_API_KEYS_FILE": str(keys),
        "QA_AUDIT_LOG": str(work / "audit.jsonl"),
    }
    with gunicorn_server(work / "index", work / "gunicorn.log", **settings) as url:
        yield {"url": url, "corpus": corpus, "work": work, "secrets": secrets}


def _as(writable, key: str) -> dict:
    return {"Authorization": f"Bearer {writable['secrets'][key]}"}


def _first_answer(url: str, question: str, name: str) -> str:
    body = {"question": question, "sources": [name], "k": 1}
    response = httpx.post(url + "/api/v1/ask", json=body)
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
        assert "2.4 billion" in _first_answer(url, "How much did the tunnel cost?", name)

        replaced = httpx.put(
            f"{url}/api/v1/sources/{name}",
            content=REPLACEMENT.encode(),
            params={"title": "Harbour tunnel opens late"},
            headers={**_as(writable, "desk"), "Content-Type": "text/plain; charset=utf-8"},
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["title"] == "Harbour tunnel opens late"
        assert "2.6 billion" in _first_answer(url, "How much did the tunnel cost?", name)
        assert (writable["corpus"] / name).read_text() == REPLACEMENT

        deleted = httpx.delete(f"{url}/api/v1/sources/{name}", headers=_as(writable, "desk"))
        assert deleted.status_code == 204
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
    ],
    ids=["no-key", "read-key", "traversal", "suffix", "blank", "nul", "not-utf8", "too-big",
         "unknown", "exists"],
)  # fmt: skip
def test_bad_writes_are_refused_and_change_nothing(writable, method, path, kwargs, key, status):
    before = sorted(p.name for p in writable["corpus"].iterdir())
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
        assert "runs again" in client.source("ferry.md").text
        client.delete_source("ferry.md")
        with pytest.raises(QAClientError) as missing:
            client.source("ferry.md")
        assert missing.value.status == 404


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

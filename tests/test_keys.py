"""API keys: stored as digests, scoped, checked on every request when reading needs one."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import stat
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner
from support import gunicorn_server

from qa_service.cli import main
from qa_service.client import QAClient, QAClientError
from qa_service.index import build_index
from qa_service.web import keys
from qa_service.web.app import create_app
from qa_service.web.keys import add_key, digest, load_keys, match


@pytest.fixture()
def keys_file(tmp_path):
    """A keys file with a reading key and a writing key; their secrets by name."""
    path = tmp_path / "keys.json"
    secrets = {
        "reader": add_key(path, "reader", ["read"]),
        "writer": add_key(path, "writer", ["write"]),
    }
    return path, secrets


def test_only_digests_are_stored_and_only_the_owner_reads_them(keys_file):
    path, secrets = keys_file
    stored = path.read_text()
    assert all(secret not in stored for secret in secrets.values())
    assert {key.sha256 for key in load_keys(path)} == {digest(s) for s in secrets.values()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_secret_matches_its_key_and_nothing_else_does(keys_file):
    path, secrets = keys_file
    keys = load_keys(path)
    assert match(keys, secrets["reader"]).name == "reader"
    assert match(keys, secrets["writer"]).scopes == ("write",)
    assert match(keys, secrets["reader"] + "x") is None
    assert match(keys, "") is None


def test_names_are_unique_and_scopes_known(keys_file):
    path, _ = keys_file
    with pytest.raises(ValueError, match="already a key"):
        add_key(path, "reader", ["read"])
    with pytest.raises(ValueError, match="scopes"):
        add_key(path, "admin", ["admin"])


def test_the_cli_shows_a_secret_once_and_lists_names_only(tmp_path):
    path = tmp_path / "keys.json"
    runner = CliRunner()
    added = runner.invoke(main, ["keys", "add", "desk", "--scope", "read", "--scope", "write",
                                 "--file", str(path)])  # fmt: skip
    assert added.exit_code == 0, added.output
    secret = added.output.strip()
    assert secret.startswith("qa_") and match(load_keys(path), secret).name == "desk"
    listed = runner.invoke(main, ["keys", "list", "--file", str(path)])
    assert listed.output == "desk\tread,write\n"
    again = runner.invoke(main, ["keys", "add", "desk", "--file", str(path)])
    assert again.exit_code != 0 and "already a key" in again.output


def test_reading_needs_a_key_when_configured(index_dir, keys_file):
    path, secrets = keys_file
    app = create_app({"INDEX_DIR": str(index_dir), "API_KEYS_FILE": str(path), "READ_NEEDS_KEY": 1})
    client = app.test_client()
    ask = "/api/v1/ask?q=What+damages+are+sought%3F"
    missing = client.get(ask)
    assert missing.status_code == 401
    assert missing.get_json()["error"]["status"] == 401
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert "send it as 'Authorization: Bearer <key>'" in missing.get_json()["error"]["message"]
    wrong = client.get(ask, headers={"Authorization": "Bearer qa_not-a-key"})
    assert wrong.status_code == 401
    assert "does not know that API key" in wrong.get_json()["error"]["message"]
    assert "error=invalid_token" in wrong.headers["WWW-Authenticate"]
    writer = client.get(ask, headers={"Authorization": f"Bearer {secrets['writer']}"})
    assert writer.status_code == 403 and "writer" in writer.get_json()["error"]["message"]
    reader = client.get(ask, headers={"Authorization": f"Bearer {secrets['reader']}"})
    assert reader.status_code == 200 and reader.get_json()["passages"]
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 401


def test_a_key_sent_to_a_server_without_keys_is_told_so(index_dir):
    client = create_app({"INDEX_DIR": str(index_dir)}).test_client()
    sent = client.post(
        "/api/v1/sources",
        json={"name": "a.txt", "text": "Words."},
        headers={"Authorization": "Bearer qa_some-key"},
    )
    assert sent.status_code == 401
    message = sent.get_json()["error"]["message"]
    assert "no API keys yet" in message and "qa-service keys add" in message
    unsent = client.post("/api/v1/sources", json={"name": "a.txt", "text": "Words."})
    assert unsent.status_code == 401 and "send it as" in unsent.get_json()["error"]["message"]


def test_reading_needs_a_key_only_with_keys_to_check(index_dir):
    with pytest.raises(ValueError, match="QA_API_KEYS_FILE"):
        create_app({"INDEX_DIR": str(index_dir), "READ_NEEDS_KEY": 1})


def test_keys_against_real_gunicorn_and_never_in_the_logs(index_dir, keys_file, tmp_path):
    path, secrets = keys_file
    log = tmp_path / "gunicorn.log"
    settings = {"QA_API_KEYS_FILE": str(path), "QA_READ_NEEDS_KEY": "1"}
    with gunicorn_server(index_dir, log, ready="/healthz", **settings) as url:
        question = {"question": "What damages are sought?"}
        assert httpx.post(url + "/api/v1/ask", json=question).status_code == 401
        with QAClient(url, api_key=secrets["reader"]) as client:
            assert client.ask(question["question"]).passages
        with QAClient(url, api_key=secrets["writer"]) as client:
            with pytest.raises(QAClientError) as refused:
                client.ask(question["question"])
            assert refused.value.status == 403
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert {line.get("status") for line in lines} >= {401, 200}
    assert secrets["reader"] not in log.read_text()


# gunicorn's access log atoms that could hold a key, each in the format: the request
# line, path and query, Basic user, referrer, and the headers and environ they come from.
EVERY_ATOM = (
    '%(h)s %(u)s "%(r)s" %(U)s %(q)s %(s)s "%(f)s" %({authorization}i)s'
    " %({proxy-authorization}i)s %({cookie}i)s %({referer}i)s %({http_authorization}e)s"
    " %({query_string}e)s %({raw_uri}e)s %({http_referer}e)s %({request_uri}e)s"
)


def send_raw(url: str, request: bytes) -> bytes:
    """Send bytes as they are; what comes back (the status line first)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(65536)


def test_no_key_reaches_a_log_however_it_is_sent(index_dir, keys_file, tmp_path):
    path, secrets = keys_file
    key = secrets["reader"]
    log, access = tmp_path / "gunicorn.log", tmp_path / "access.log"
    settings = {
        "QA_API_KEYS_FILE": str(path),
        "QA_READ_NEEDS_KEY": "1",
        "QA_ACCESS_LOG": str(access),
        "GUNICORN_CMD_ARGS": f"--access-logformat '{EVERY_ATOM}'",
    }
    with gunicorn_server(index_dir, log, ready="/healthz", **settings) as url:
        ask = url + "/api/v1/ask?q=What+damages+are+sought%3F"
        host = urlsplit(url).netloc
        sent = [
            httpx.get(ask, headers={"Authorization": f"Bearer {key}"}),
            httpx.get(f"{ask}&api_key={key}&key={key}&access_token={key}"),
            httpx.get(ask, auth=(key, "")),  # Basic, the key as user
            httpx.get(ask, auth=("reader", key)),  # Basic, the key as password
            httpx.get(f"http://{key}@{host}/api/v1/ask?q=damages"),  # becomes Basic
            httpx.get(url + "/static/app.js", headers={"Referer": f"{url}/?api_key={key}"}),
            httpx.get(url + "/healthz", headers={"Referer": f"http://{key}:x@{host}/"}),
            httpx.get(ask, headers={"Cookie": f"api_key={key}", "Proxy-Authorization": key}),
        ]
        assert [response.status_code for response in sent] == [200, *[401] * 4, 200, 200, 401]
        # Absolute-form: user and query in the request line itself.
        line = f"GET http://{key}@{host}/healthz?api_key={key} HTTP/1.1\r\nHost: a\r\n\r\n"
        assert send_raw(url, line.encode()).startswith(b"HTTP/1.1 200")
        # Requests gunicorn refuses: it would quote the request line or header it read.
        malformed = [
            f"GET /api/v1/ask?api_key={key} HTTP/1.1 extra\r\n\r\n",
            f"GET /healthz HTTP/1.1\r\nHost: a\r\nAuthorization Bearer {key}\r\n\r\n",
        ]
        for request in malformed:
            answer = send_raw(url, request.encode())
            assert answer.startswith(b"HTTP/1.1 400") and key.encode() not in answer
    logged = access.read_text() + log.read_text()
    assert '"GET /api/v1/ask HTTP/1.1" /api/v1/ask  401' in access.read_text()
    assert "Invalid request from ip=" in log.read_text()
    for form in (key, base64.b64encode(f"{key}:".encode()).decode()[:40]):
        assert form not in logged


def test_keys_added_and_removed_count_without_a_restart(index_dir, keys_file, monkeypatch):
    monkeypatch.setattr(keys, "CHECK_SECONDS", 0)
    path, secrets = keys_file
    app = create_app({"INDEX_DIR": str(index_dir), "API_KEYS_FILE": str(path), "READ_NEEDS_KEY": 1})
    client = app.test_client()

    def asked(secret: str) -> int:
        return client.get("/api/v1/ask?q=Who+sued", headers={"Authorization": f"Bearer {secret}"})

    assert asked(secrets["reader"]).status_code == 200
    removed = CliRunner().invoke(main, ["keys", "remove", "reader", "--file", str(path)])
    assert removed.exit_code == 0 and removed.output == "removed reader\n"
    refused = asked(secrets["reader"])
    assert refused.status_code == 401
    assert "does not know that API key" in refused.get_json()["error"]["message"]
    newcomer = add_key(path, "newcomer", ["read"])
    assert asked(newcomer).status_code == 200
    again = CliRunner().invoke(main, ["keys", "remove", "reader", "--file", str(path)])
    assert again.exit_code == 1 and "no key named 'reader'" in again.output


def test_a_keys_file_that_breaks_leaves_no_key_valid(keys_file, monkeypatch, caplog):
    monkeypatch.setattr(keys, "CHECK_SECONDS", 0)
    path, secrets = keys_file
    ring = keys.KeysFile(path)
    assert match(ring.current(), secrets["writer"]).name == "writer"
    path.write_text("{not json", encoding="utf-8")
    assert ring.current() == []
    assert "no API key is valid until" in caplog.text
    path.unlink()
    assert ring.current() == []


def test_the_readme_keys_recipe_works_with_no_setting(seeds_dir, tmp_path, monkeypatch):
    # keys add → the server → sources add → ask, sharing keys.json in the index folder.
    corpus, index = tmp_path / "seeds", tmp_path / "index"
    shutil.copytree(seeds_dir, corpus)
    build_index(corpus, index)
    monkeypatch.delenv("QA_API_KEYS_FILE", raising=False)
    runner = CliRunner()
    environment = {"QA_INDEX": str(index), "QA_SEEDS": str(corpus)}
    added = runner.invoke(main, ["keys", "add", "desk", "--scope", "write"], env=environment)
    assert added.exit_code == 0, added.output
    assert (index / "keys.json").is_file()
    note = tmp_path / "note.txt"
    note.write_text("Harbour lights\n\nThe port switched off its 140 harbour lights.\n")
    with gunicorn_server(index, tmp_path / "gunicorn.log", QA_SEEDS=str(corpus)) as url:
        written = runner.invoke(
            main,
            ["sources", "add", str(note)],
            env={**environment, "QA_URL": url, "QA_API_KEY": added.output.strip()},
        )
        assert written.exit_code == 0, written.output
        answer = httpx.post(url + "/api/v1/ask", json={"question": "How many harbour lights?"})
        assert answer.json()["passages"][0]["citation"]["source"] == "note.txt"

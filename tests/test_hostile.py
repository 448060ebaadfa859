"""Hostile input against the real gunicorn server: a table of nasty requests, and schemathesis."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest
from support import gunicorn_server

from qa_service.index import build_index
from qa_service.web.keys import add_key

SECRET = "swordfish-7f3a"
NESTED_ARTICLE = (
    "The os module provides a portable way of using operating system dependent functionality.\n"
)


@pytest.fixture(scope="module")
def hostile_server(seeds_dir, tmp_path_factory):
    """The seeds plus a nested article, and a symlink to a secret outside the folder."""
    work = tmp_path_factory.mktemp("hostile")
    (work / "outside").mkdir()
    (work / "outside" / "secret.txt").write_text(f"The password is {SECRET}.\n")
    seeds = work / "seeds"
    shutil.copytree(seeds_dir, seeds)
    (seeds / "library").mkdir()
    (seeds / "library" / "os.rst.txt").write_text(NESTED_ARTICLE)
    (seeds / "leak.txt").symlink_to(work / "outside" / "secret.txt")
    build_index(seeds, work / "index")
    with gunicorn_server(work / "index", work / "gunicorn.log") as url:
        yield url


def error(status: int, message: str, fields: dict | None = None) -> dict:
    detail = {"status": status, "message": message}
    if fields is not None:
        detail["fields"] = fields
    return {"error": detail}


JSON = {"Content-Type": "application/json"}
INVALID = "The request has invalid fields."
NOT_FOUND = (
    "The requested URL was not found on the server. "
    "If you entered the URL manually please check your spelling and try again."
)
TOO_LONG = {"q": ["Length must be between 1 and 500."]}
HOSTILE = [
    pytest.param("POST", "/api/v1/ask", b'{"question": "' + b"x" * 20000 + b'"}', JSON, 413,
                 error(413, "The request body is larger than 16384 bytes."), id="body-over-limit"),
    pytest.param("POST", "/api/v1/ask", b"[" * 5000 + b"]" * 5000, JSON, 400,
                 error(400, "The body is nested too deeply."), id="deeply-nested"),
    pytest.param("POST", "/api/v1/ask", b'{"question": "caf\xe9"}', JSON, 400,
                 error(400, "The body is not valid JSON."), id="invalid-utf8"),
    pytest.param("POST", "/api/v1/ask", b'{"question": "a\x00b"}', JSON, 400,
                 error(400, "The body is not valid JSON."), id="raw-nul-byte"),
    pytest.param("POST", "/api/v1/ask", b'{"question": "a\\u0000b"}', JSON, 422,
                 error(422, INVALID, {"question": ["Must not contain NUL characters."]}),
                 id="escaped-nul"),
    # Longer request lines are gunicorn's to refuse (test_hardening).
    pytest.param("GET", "/api/v1/ask?q=" + "x" * 600, None, {}, 422,
                 error(422, INVALID, TOO_LONG), id="long-query-string"),
    pytest.param("GET", "/api/v1/ask?q=" + "%C3%A9" * 600, None, {}, 422,
                 error(422, INVALID, TOO_LONG), id="long-encoded-query-string"),
    pytest.param("GET", "/api/v1/sources/..%2F..%2Fetc%2Fpasswd", None, {}, 404,
                 error(404, "Unknown source: ../../etc/passwd"), id="encoded-traversal"),
    # A name cannot start with "/": no route matches, and that is all it learns.
    pytest.param("GET", "/api/v1/sources/%2Fetc%2Fpasswd", None, {}, 404,
                 error(404, NOT_FOUND), id="encoded-absolute-path"),
    pytest.param("GET", "/api/v1/sources/../../etc/passwd", None, {}, 404,
                 error(404, "Unknown source: ../../etc/passwd"), id="raw-traversal"),
    pytest.param("GET", "/api/v1/sources/leak.txt", None, {}, 404,
                 error(404, "Unknown source: leak.txt"), id="symlink-out-of-folder"),
    pytest.param("GET", "/api/v1/sources/seeds%00.txt", None, {}, 404,
                 error(404, "Unknown source: seeds\x00.txt"), id="nul-in-name"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "expected"), HOSTILE)
def test_hostile_requests_get_clean_json_errors(
    hostile_server, method, path, body, headers, status, expected
):
    # http.client sends the path and body exactly as given (httpx would tidy "../").
    host, port = urlsplit(hostile_server).hostname, urlsplit(hostile_server).port
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request(method, path, body=body, headers=headers)
    raw = connection.getresponse()
    response = httpx.Response(raw.status, headers=raw.getheaders(), content=raw.read())
    connection.close()
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert SECRET not in response.text


@pytest.mark.parametrize(
    "path",
    ["/sources/..%2F..%2Fetc%2Fpasswd", "/sources/leak.txt", "/?q=" + "x" * 600],
    ids=["page-traversal", "page-symlink", "page-long-query"],
)
def test_hostile_page_requests_get_clean_html_errors(hostile_server, path):
    response = httpx.get(hostile_server + path, timeout=10)
    assert response.status_code in (404, 422)
    assert response.headers["content-type"].startswith("text/html")
    assert SECRET not in response.text and "Traceback" not in response.text


def test_nothing_outside_the_folder_is_served(hostile_server):
    names = [s["name"] for s in httpx.get(f"{hostile_server}/api/v1/sources").json()["sources"]]
    assert "leak.txt" not in names
    answers = httpx.post(f"{hostile_server}/api/v1/ask", json={"question": "What is the password?"})
    assert SECRET not in answers.text


def test_nested_source_names_work(hostile_server):
    name = "library/os.rst.txt"
    document = httpx.get(f"{hostile_server}/api/v1/sources/{name}").json()
    assert document["name"] == name and document["text"] == NESTED_ARTICLE
    answers = httpx.post(
        f"{hostile_server}/api/v1/ask", json={"question": "What does the os module provide?"}
    ).json()
    citation = answers["passages"][0]["citation"]
    assert citation["source"] == name
    page = httpx.get(hostile_server + citation["url"])
    assert page.status_code == 200 and 'id="cited"' in page.text


# --- schemathesis: every documented operation, generated inputs, validated responses


CONTRACT_WARNINGS = {
    "missing_auth", "base_url_mismatch", "missing_deserializer",
    "unused_openapi_auth", "unsupported_regex", "method_not_allowed", "unresolvable_reference",
    "dictionary_mismatch", "timeout_units",
}  # fmt: skip


def test_api_matches_its_openapi_document(seeds_dir, tmp_path):
    # Writes included: a copy of the seeds to write to, and a key that may.
    seeds = tmp_path / "seeds"
    shutil.copytree(seeds_dir, seeds)
    build_index(seeds, tmp_path / "index")
    key = add_key(tmp_path / "keys.json", "fuzzer", ["read", "write"])
    settings = {"QA_SEEDS": str(seeds), "QA_API_KEYS_FILE": str(tmp_path / "keys.json")}
    with gunicorn_server(tmp_path / "index", tmp_path / "gunicorn.log", **settings) as url:
        # The command line rather than the pytest plugin, which does not run under pytest 9.
        # Every check but one: a schema-valid "sources" list naming no indexed source is
        # rightly refused (422), which positive_data_acceptance would count against us.
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "50", "--seed", "1", "-H", f"Authorization: Bearer {key}",
            # Warnings about the contract, not those that depend on timing: a write is
            # indexed after its 202 and the next write meanwhile gets 409, so how many
            # writes succeed (missing_test_data, low_valid_rate) varies with the machine;
            # so does validation_mismatch, which fires when no write got its 202 and the
            # 400s for values the document cannot state (a real date) are all that is
            # left once 409s are discounted (seen in 2 of 6 fresh runs on 2026-12-05).
            "--warnings", ",".join(sorted(CONTRACT_WARNINGS)),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No issues found" in result.stdout, result.stdout[-4000:]

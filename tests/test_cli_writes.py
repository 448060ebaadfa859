"""`qa-service sources`: listing and writing articles through a real gunicorn service."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from click.testing import CliRunner
from support import free_port, gunicorn_server

from qa_service.cli import main
from qa_service.client import QAClient
from qa_service.index import build_index
from qa_service.web.keys import add_key

ARTICLE = (
    "River Bridge Reopens\n\nThe old river bridge reopened to cyclists on Monday after a year "
    "of repairs that cost 18 million euros, the city council said.\n"
)
REPLACEMENT = (
    "River Bridge Reopens\n\nThe river bridge reopened on Wednesday, two days late. The repairs "
    "cost 21 million euros in the end, the council now says.\n"
)
COST = "How much did the repairs cost?"


@pytest.fixture(scope="module")
def service(seeds_dir, tmp_path_factory):
    """A service over a copy of the seeds, with a writing key and a reading key."""
    work = tmp_path_factory.mktemp("cli-writes")
    corpus = work / "seeds"
    shutil.copytree(seeds_dir, corpus)
    build_index(corpus, work / "index")
    keys = work / "keys.json"
    secrets = {
        "desk": add_key(keys, "desk", ["read", "write"]),
        "reader": add_key(keys, "reader", ["read"]),
    }
    settings = {"QA_SEEDS": str(corpus), "QA_API_KEYS_FILE": str(keys)}
    with gunicorn_server(work / "index", work / "gunicorn.log", **settings) as url:
        yield {"url": url, "corpus": corpus, "secrets": secrets}


def _run(service, *arguments: str, key: str | None = "desk"):
    """`qa-service sources ...` with QA_URL set to the service and QA_API_KEY to `key`'s secret."""
    environment = {
        "QA_URL": service["url"],
        "QA_API_KEY": service["secrets"][key] if key else None,
    }
    return CliRunner().invoke(main, ["sources", *arguments], env=environment)


def _article(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _first_answer(service, question: str, name: str) -> str:
    with QAClient(service["url"]) as client:
        return client.ask(question, k=1, sources=[name]).passages[0].text


def _files(service) -> list[str]:
    return sorted(path.name for path in service["corpus"].iterdir())


def test_add_makes_the_article_answerable(service, tmp_path):
    path = _article(tmp_path, "river-bridge.txt", ARTICLE.encode())
    added = _run(service, "add", str(path), "--publisher", "City Desk", "--date", "2024-05-03")
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("added river-bridge.txt (")
    assert added.stdout.endswith("passages): River Bridge Reopens\n")
    assert added.stderr == ""
    assert service["secrets"]["desk"] not in added.output
    assert "18 million" in _first_answer(service, COST, "river-bridge.txt")
    assert (service["corpus"] / "river-bridge.txt").read_text(encoding="utf-8") == ARTICLE
    sidecar = json.loads((service["corpus"] / "river-bridge.txt.json").read_text())
    assert sidecar == {"publisher": "City Desk", "date": "2024-05-03"}


def test_replace_prints_the_json_the_service_returned(service, tmp_path):
    with QAClient(service["url"], api_key=service["secrets"]["desk"]) as client:
        client.add_source("bridge-late.txt", ARTICLE, publisher="City Desk")
    path = _article(tmp_path, "draft.txt", REPLACEMENT.encode())
    replaced = _run(
        service, "replace", str(path), "--name", "bridge-late.txt",
        "--title", "River bridge reopens late", "--article-url", "https://example.org/bridge",
        "--json",
    )  # fmt: skip
    assert replaced.exit_code == 0, replaced.output
    listed = httpx.get(service["url"] + "/api/v1/sources").json()["sources"]
    assert json.loads(replaced.stdout) == next(s for s in listed if s["name"] == "bridge-late.txt")
    assert json.loads(replaced.stdout)["title"] == "River bridge reopens late"
    # PUT sets the metadata anew: the publisher not given again is gone.
    assert json.loads(replaced.stdout)["publisher"] is None
    assert "21 million" in _first_answer(service, COST, "bridge-late.txt")
    assert (service["corpus"] / "bridge-late.txt").read_text(encoding="utf-8") == REPLACEMENT


def test_delete_removes_the_article_with_the_key_given_as_a_flag(service):
    with QAClient(service["url"], api_key=service["secrets"]["desk"]) as client:
        client.add_source("ferry.md", "The night ferry was cancelled.")
    deleted = _run(service, "delete", "ferry.md", "--key", service["secrets"]["desk"], key=None)
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout == "deleted ferry.md\n"
    assert not (service["corpus"] / "ferry.md").exists()
    with QAClient(service["url"]) as client:
        assert "ferry.md" not in {source.name for source in client.sources()}


def test_no_wait_returns_once_the_write_is_accepted(service, tmp_path):
    path = _article(tmp_path, "tram.md", b"The tram line opens in May, the city said.\n")
    accepted = _run(service, "add", str(path), "--no-wait", "--json")
    assert accepted.exit_code == 0, accepted.output
    status = json.loads(accepted.stdout)
    assert (status["action"], status["source"], status["state"]) == ("add", "tram.md", "indexing")
    with QAClient(service["url"], api_key=service["secrets"]["desk"]) as client:
        assert client.wait_for(client.write_status(status["id"])).indexed.name == "tram.md"
    deleted = _run(service, "delete", "tram.md", "--no-wait")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.startswith("deleted tram.md: being indexed (write ")
    # The service left as this test found it: the next test lists the sources twice, and a
    # delete that lands between the two would make them differ.
    write_id = deleted.stdout.removeprefix("deleted tram.md: being indexed (write ").rstrip(")\n")
    with QAClient(service["url"], api_key=service["secrets"]["desk"]) as client:
        assert client.wait_for(client.write_status(write_id)).state == "done"


def test_list_shows_every_source_with_flags_instead_of_the_environment(service):
    with QAClient(service["url"]) as client:
        expected = client.sources()
    nowhere = f"http://127.0.0.1:{free_port()}"
    listed = CliRunner().invoke(
        main, ["sources", "list", "--url", service["url"]], env={"QA_URL": nowhere}
    )
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [f"{s.name}\t{s.passages}\t{s.title}" for s in expected]
    as_json = _run(service, "list", "--json", key=None)
    assert json.loads(as_json.stdout) == httpx.get(service["url"] + "/api/v1/sources").json()


@pytest.mark.parametrize(
    ("arguments", "key", "message"),
    [
        (["add", "{file}"], None,
         "Error: 401: This needs an API key: send it as 'Authorization: Bearer <key>'.\n"),
        (["replace", "{file}"], "reader", "Error: 403: The key 'reader' may not write.\n"),
        (["add", "{file}", "--name", "notes.rtf"], "desk",
         "Error: 422: The request has invalid fields. name: A file name of letters, digits, "
         "'.', '_' or '-', ending .txt or .md.\n"),
        (["add", "{file}", "--name", "000_b6702db7aca47a35.txt"], "desk",
         "Error: 409: There is already a source named 000_b6702db7aca47a35.txt: PUT replaces "
         "it.\n"),
        (["delete", "nowhere.txt"], "desk", "Error: 404: Unknown source: nowhere.txt\n"),
    ],
    ids=["no-key", "read-key", "bad-name", "name-taken", "unknown"],
)  # fmt: skip
def test_refused_writes_exit_non_zero_and_change_nothing(
    service, tmp_path, arguments, key, message
):
    path = _article(tmp_path, "refused.txt", ARTICLE.encode())
    before = _files(service)
    refused = _run(service, *(a.format(file=path) for a in arguments), key=key)
    assert refused.exit_code == 1
    assert refused.stderr == message
    assert refused.stdout == ""
    assert _files(service) == before


def test_a_file_that_is_not_utf8_is_a_usage_error_and_nothing_is_sent(service, tmp_path):
    path = _article(tmp_path, "latin.txt", "Café prices rose.".encode("latin-1"))
    refused = _run(service, "add", str(path))
    assert refused.exit_code == 2
    assert refused.stderr.endswith(
        f"Error: Invalid value for 'FILE': {path} is not UTF-8 text"
        " (invalid continuation byte at byte 3).\n"
    )
    assert "Traceback" not in refused.output
    assert not (service["corpus"] / "latin.txt").exists()


def test_an_unreachable_service_is_an_error_message():
    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable = CliRunner().invoke(main, ["sources", "list"], env={"QA_URL": nowhere})
    assert unreachable.exit_code == 1
    assert unreachable.stderr.startswith(f"Error: GET {nowhere}/api/v1/sources: ")
    assert "Traceback" not in unreachable.output


@pytest.mark.parametrize(
    ("bind", "url"),
    [("127.0.0.1:8123", "http://127.0.0.1:8123"), ("0.0.0.0:8124", "http://127.0.0.1:8124"),
     (None, "http://127.0.0.1:8000")],
    ids=["loopback", "every-address", "unset"],
)  # fmt: skip
def test_without_qa_url_the_cli_looks_where_serve_listens(monkeypatch, bind, url):
    monkeypatch.delenv("QA_URL", raising=False)
    if bind is None:
        monkeypatch.delenv("QA_BIND", raising=False)
    else:
        monkeypatch.setenv("QA_BIND", bind)
    result = CliRunner().invoke(main, ["sources", "list", "--timeout", "1"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: GET {url}/api/v1/sources: ")

"""Pinned citations: a citation names the version it indexes and can be checked after a change."""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
import shutil

import httpx
import pytest
from postgres_support import postgres_server
from support import gunicorn_server, wait_for_generation

from qa_service.client import QAClient
from qa_service.config import ENVIRONMENT
from qa_service.core.citations import Status, verify
from qa_service.core.results import SourceDocument, Verification
from qa_service.index import build_index, configured_engine

OLD = "The court met on Monday. The lawsuit seeks damages of $1,000 per person. It ended."


def _document(text: str) -> SourceDocument:
    sha = hashlib.sha256(text.encode()).hexdigest()
    return SourceDocument(name="a.txt", title="A", passages=1, text=text, sha256=sha)


QUOTE = OLD.index("The lawsuit"), OLD.index(" It ended")
CLAIM = "The lawsuit seeks damages of $1,000 per person."


@pytest.mark.parametrize(
    ("current", "status", "found"),
    [
        (OLD, Status.HOLDS, CLAIM),
        ("Update: a new first line.\n" + OLD, Status.MOVED, CLAIM),
        (OLD.replace("per person", "per persons"), Status.CHANGED, CLAIM.removesuffix(".")),
        ("The court met on Monday. Nothing else happened.", Status.GONE, None),
        (None, Status.GONE, None),
    ],
)  # fmt: skip
def test_cited_words_are_found_where_they_now_stand(current, status, found):
    verdict = verify(_document(OLD), current and _document(current), *QUOTE)
    assert verdict.status is status
    assert verdict.quoted == OLD[slice(*QUOTE)]
    if found is None:
        assert verdict.start is None
    else:
        assert current[verdict.start : verdict.end].startswith(found)


def test_a_version_no_longer_kept_is_said_so():
    assert verify(None, _document(OLD), *QUOTE).status is Status.UNKNOWN_VERSION


@pytest.fixture(params=["whoosh", "postgres"])
def engine_settings(request, tmp_path):
    if request.param == "whoosh":
        yield {"QA_BACKEND": "whoosh", "QA_INDEX": str(tmp_path / "index")}
        return
    with postgres_server() as server:
        yield {"QA_BACKEND": "postgres", "QA_DATABASE_URL": server.url}


def test_an_old_citation_is_verified_after_its_source_is_corrected(
    seeds_dir, tmp_path, engine_settings
):
    corpus = tmp_path / "corpus"
    shutil.copytree(seeds_dir, corpus)
    engine = configured_engine({ENVIRONMENT[key]: value for key, value in engine_settings.items()})
    build_index(corpus, engine)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(
            gunicorn_server(tmp_path / "index", tmp_path / "log", **engine_settings)
        )
        answer = httpx.post(url + "/api/v1/ask", json={"question": "What damages are sought?"})
        cited = answer.json()["passages"][0]
        citation = cited["citation"]
        path = corpus / citation["source"]
        old_text = path.read_text(encoding="utf-8")
        assert citation["sha256"] == hashlib.sha256(old_text.encode()).hexdigest()
        client = stack.enter_context(QAClient(url))
        pinned = client.ask("What damages are sought?").passages[0].citation
        assert pinned.sha256 == citation["sha256"]

        def check() -> Verification:
            return client.verify_citation(pinned)

        assert check().status == "holds"
        correction = "Correction: an earlier version of this article misstated a date.\n\n"
        _rebuild(url, corpus, engine, path, correction + old_text)
        moved = check()
        assert moved.status == "moved"
        assert moved.start == citation["start"] + len(correction)
        assert moved.text == cited["text"] == moved.quoted
        assert moved.sha256 != citation["sha256"]
        assert client.source(citation["source"], version=pinned.sha256).text == old_text
        # The page a citation links to shows the text it cited, and says it has changed.
        page = httpx.get(url + citation["url"]).text
        assert "the article has changed since" in page
        cited_mark = re.search(r'<mark id="cited" class="cited">(.*?)</mark>', page, re.S)
        assert html.unescape(cited_mark.group(1)) == cited["text"]
        _rebuild(url, corpus, engine, path, correction)
        assert check().status == "gone"
        unknown = httpx.get(
            f"{url}/api/v1/sources/{citation['source']}", params={"version": "0" * 64}
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["status"] == 404


def _rebuild(url: str, corpus, engine, path, text: str) -> None:
    """Correct one article, rebuild, and wait until every worker serves the new generation."""
    path.write_text(text, encoding="utf-8")
    wait_for_generation(url, build_index(corpus, engine).generation)

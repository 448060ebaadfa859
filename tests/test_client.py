"""The Python client in process: the Flask app behind httpx's WSGI transport, no server."""

from __future__ import annotations

from urllib.parse import urljoin

import httpx
import pytest
from support import free_port

from qa_service.client import (
    QAClient,
    QAClientError,
    QAError,
    QAServerError,
    QATransportError,
)
from qa_service.web.schemas import AnswersSchema

BASE = "http://qa.test"


@pytest.fixture()
def qa(app):
    """A client of the app, in this process."""
    with QAClient(BASE, transport=httpx.WSGITransport(app=app)) as client:
        yield client


def _absolute_urls(value):
    """The JSON with every `url` made absolute against BASE, as the client makes them."""
    if isinstance(value, list):
        return [_absolute_urls(item) for item in value]
    if isinstance(value, dict):
        return {
            key: urljoin(BASE + "/", item) if key == "url" and item else _absolute_urls(item)
            for key, item in value.items()
        }
    return value


@pytest.mark.parametrize(
    ("question", "present"),
    [
        ("What damgaes are sought?", lambda answers: answers.did_you_mean),
        ("What damages are sought?", lambda answers: answers.passages[0].corroborated_by),
        ("When did LinkedIn change its privacy policy?",
         lambda answers: any(passage.conflicts for passage in answers.passages)),
    ],
    ids=["did-you-mean", "corroborated", "conflicts"],
)  # fmt: skip
def test_every_field_of_an_answer_reaches_the_client(qa, client, question, present):
    served = client.post("/api/v1/ask", json={"question": question, "k": 5}).get_json()
    answers = qa.ask(question, k=5)
    assert present(answers)
    assert answers.passages[0].citation.url.startswith(f"{BASE}/sources/")
    # Dumped back, the client's answers are the service's JSON: no field lost or altered.
    got = AnswersSchema().dump(answers)
    assert got.pop("took_ms") >= 0
    served.pop("took_ms")
    assert got == _absolute_urls(served)


def test_sources_and_a_source_with_its_text(qa, client, seed_texts):
    sources = qa.sources()
    assert [info.name for info in sources] == sorted(seed_texts)
    assert [vars(info) for info in sources] == client.get("/api/v1/sources").get_json()["sources"]
    document = qa.source(sources[0].name, version=sources[0].sha256)
    assert document.text == seed_texts[sources[0].name]
    assert document.title == sources[0].title


def test_a_fresh_citation_holds(qa):
    citation = qa.ask("Which court is the case filed in?", k=1).passages[0].citation
    verified = qa.verify_citation(citation)
    assert (verified.status, verified.start, verified.end) == (
        "holds",
        citation.start,
        citation.end,
    )


INVALID = "The request has invalid fields."


@pytest.mark.parametrize(
    ("call", "status", "message", "fields"),
    [
        (lambda qa: qa.ask("   "), 422, INVALID,
         {"question": ["Length must be between 1 and 500."]}),
        (lambda qa: qa.ask("court", k=0), 422, INVALID,
         {"k": ["Must be greater than or equal to 1 and less than or equal to 50."]}),
        (lambda qa: qa.ask("court", sources=["nope.txt"]), 422, INVALID,
         {"sources": ["Unknown source: nope.txt"]}),
        (lambda qa: qa.source("nope.txt"), 404, None, None),
        (lambda qa: qa.add_source("new.txt", "Text."), 401, None, None),
    ],
    ids=["blank-question", "k-zero", "unknown-source-filter", "unknown-source", "write-no-key"],
)  # fmt: skip
def test_a_refusal_carries_status_message_and_body(qa, call, status, message, fields):
    with pytest.raises(QAClientError) as raised:
        call(qa)
    error = raised.value
    detail = error.body["error"]
    assert (error.status, detail["status"]) == (status, status)
    assert error.message == detail["message"]
    said = [f"{field}: {' '.join(found)}" for field, found in (fields or {}).items()]
    assert str(error) == " ".join([f"{status}: {error.message}", *said])
    if message is not None:
        assert error.message == message
    assert detail.get("fields") == fields


def _service(status: str, content_type: str, body: bytes):
    """A WSGI app answering every request with this status and body."""

    def answer(environ, start_response):
        start_response(status, [("Content-Type", content_type)])
        return [body]

    return answer


@pytest.mark.parametrize(
    ("status", "content_type", "body", "message", "decoded"),
    [
        ("200 OK", "application/json", b'{"question": "q"}', "unexpected response: ",
         {"question": "q"}),
        ("502 Bad Gateway", "text/html", b"<h1>Bad Gateway</h1>", "Bad Gateway", None),
        ("503 Service Unavailable", "application/json",
         b'{"error": {"status": 503, "message": "The index is unavailable."}}',
         "The index is unavailable.",
         {"error": {"status": 503, "message": "The index is unavailable."}}),
    ],
    ids=["breaks-the-contract", "not-json", "json-error"],
)  # fmt: skip
def test_a_server_fault_carries_status_message_and_body(
    status, content_type, body, message, decoded
):
    transport = httpx.WSGITransport(app=_service(status, content_type, body))
    with QAClient(BASE, transport=transport) as qa, pytest.raises(QAServerError) as raised:
        qa.ask("court")
    error = raised.value
    assert error.status == int(status.split()[0])
    assert error.message.startswith(message)
    assert error.body == decoded


def test_an_unreachable_service_is_a_transport_error_naming_the_url_tried():
    url = f"http://127.0.0.1:{free_port()}"
    with QAClient(url, timeout=2) as qa, pytest.raises(QATransportError) as raised:
        qa.ask("court")
    error = raised.value
    assert isinstance(error, QAError)
    assert (error.status, error.body) == (None, None)
    assert error.message.startswith(f"POST {url}/api/v1/ask: ")
    assert str(error) == error.message


def test_the_text_of_a_422_carries_the_field_messages():
    body = {"error": {"status": 422, "message": "Invalid fields.", "fields": {"k": ["Too big."]}}}
    error = QAClientError(422, "Invalid fields.", body)
    assert str(error) == "422: Invalid fields. k: Too big."
    assert error.message == "Invalid fields."

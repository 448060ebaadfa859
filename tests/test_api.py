"""The JSON API: the success contract, every bad input, and the OpenAPI document."""

from __future__ import annotations

import hashlib
import re

import pytest
from openapi_spec_validator import validate as validate_openapi

from qa_service.web.schemas import AnswersSchema, SourceDocumentSchema, SourceListSchema

ASK = "/api/v1/ask"
INVALID = "The request has invalid fields."


def error(status, message, fields=None):
    detail = {"status": status, "message": message}
    if fields is not None:
        detail["fields"] = fields
    return {"error": detail}


def test_post_ask_returns_the_contract(client, seed_texts):
    response = client.post(ASK, json={"question": "  What damages are sought?  ", "k": 3})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = response.get_json()
    assert list(body) == ["question", "answerable", "took_ms", "passages", "did_you_mean"]
    assert body["did_you_mean"] is None
    assert body["question"] == "What damages are sought?"
    assert body["answerable"] is True
    assert len(body["passages"]) == 3
    passage = body["passages"][0]
    assert list(passage) == [
        "id", "rank", "score", "text", "answer", "highlights", "citation", "corroborated_by",
        "conflicts", "context_before",
    ]  # fmt: skip
    citation = passage["citation"]
    offsets = ["start", "end", "byte_start", "byte_end", "line_start", "line_end"]
    assert list(citation) == ["source", "title", *offsets, "sha256", "url"]
    source = seed_texts[citation["source"]]
    assert source[citation["start"] : citation["end"]] == passage["text"]
    # The version of the source the offsets index.
    assert citation["sha256"] == hashlib.sha256(source.encode()).hexdigest()
    # Relative: without QA_PUBLIC_URL nothing says where readers reach the service.
    assert citation["url"] == (
        f"/sources/{citation['source']}?start={citation['start']}&end={citation['end']}"
        f"&version={citation['sha256']}#cited"
    )
    assert "$1,000" in passage["text"]
    # The sentence before the passage, quoted exactly, ending before the passage starts.
    for cited in body["passages"]:
        before = cited["context_before"]
        text = seed_texts[cited["citation"]["source"]]
        assert before is None or text[before["start"] : before["end"]] == before["text"]
        assert before is None or before["end"] <= cited["citation"]["start"]
    assert any(cited["context_before"] for cited in body["passages"])
    AnswersSchema().load(body)  # the body loads back through the documented schema


def test_get_ask_reads_the_query_string(client):
    response = client.get(ASK, query_string={"q": "Which court is the case filed in?", "k": "2"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["question"] == "Which court is the case filed in?"
    assert len(body["passages"]) == 2


@pytest.mark.parametrize(
    "question",
    [
        "title:damages",
        "*",
        "damages AND OR NOT",
        'unbalanced "quote',
        "(court [filed",
        "\x07bell\x1b[0m",
    ],
    ids=["field-syntax", "wildcard", "operators", "quote", "brackets", "control-chars"],
)
def test_query_syntax_is_searched_as_plain_words(client, question):
    response = client.post(ASK, json={"question": question})
    assert response.status_code == 200
    body = response.get_json()
    assert body["question"] == question.strip()
    AnswersSchema().load(body)


def test_operators_are_words_not_query_syntax(client):
    # "NOT" excludes nothing: the passages found still speak of damages.
    found = client.post(ASK, json={"question": "NOT damages AND court*"}).get_json()
    assert found["passages"]
    assert "damages" in found["passages"][0]["text"].lower()


BAD_INPUTS = [
    pytest.param(
        dict(data="{", content_type="application/json"),
        400,
        error(400, "The body is not valid JSON."),
        id="not-json",
    ),
    pytest.param(
        dict(data=b'{"question": "\xff"}', content_type="application/json"),
        400,
        error(400, "The body is not valid JSON."),
        id="invalid-utf8",
    ),
    pytest.param(
        dict(json=["What damages?"]), 400, error(400, "The body must be a JSON object."), id="array"
    ),
    pytest.param(
        dict(json=None, data="null", content_type="application/json"),
        400,
        error(400, "The body must be a JSON object."),
        id="null",
    ),
    pytest.param(
        dict(data='{"question": "x"}', content_type="text/plain"),
        415,
        error(415, "The body must be JSON sent with Content-Type: application/json."),
        id="text-plain",
    ),
    pytest.param(
        dict(data='{"question": "x"}'),
        415,
        error(415, "The body must be JSON sent with Content-Type: application/json."),
        id="no-content-type",
    ),
    pytest.param(
        dict(json={"k": 3}),
        422,
        error(422, INVALID, {"question": ["Missing data for required field."]}),
        id="missing-question",
    ),
    pytest.param(
        dict(json={"question": "   "}),
        422,
        error(422, INVALID, {"question": ["Length must be between 1 and 500."]}),
        id="blank-question",
    ),
    pytest.param(
        dict(json={"question": "x" * 501}),
        422,
        error(422, INVALID, {"question": ["Length must be between 1 and 500."]}),
        id="long-question",
    ),
    pytest.param(
        dict(json={"question": 12}),
        422,
        error(422, INVALID, {"question": ["Not a valid string."]}),
        id="number-question",
    ),
    pytest.param(
        dict(json={"question": "dam\x00ages"}),
        422,
        error(422, INVALID, {"question": ["Must not contain NUL characters."]}),
        id="nul-question",
    ),
    pytest.param(
        dict(json={"question": "x", "k": 0}),
        422,
        error(
            422,
            INVALID,
            {"k": ["Must be greater than or equal to 1 and less than or equal to 50."]},
        ),
        id="k-zero",
    ),
    pytest.param(
        dict(json={"question": "x", "k": 51}),
        422,
        error(
            422,
            INVALID,
            {"k": ["Must be greater than or equal to 1 and less than or equal to 50."]},
        ),
        id="k-too-big",
    ),
    pytest.param(
        dict(json={"question": "x", "k": "5"}),
        422,
        error(422, INVALID, {"k": ["Not a valid integer."]}),
        id="k-string",
    ),
    pytest.param(
        dict(json={"question": "x", "k": True}),
        422,
        error(422, INVALID, {"k": ["Not a valid integer."]}),
        id="k-bool",
    ),
    pytest.param(
        dict(json={"question": "x", "k": 2.5}),
        422,
        error(422, INVALID, {"k": ["Not a valid integer."]}),
        id="k-float",
    ),
    pytest.param(
        dict(json={"question": "x", "top": 3}),
        422,
        error(422, INVALID, {"top": ["Unknown field."]}),
        id="unknown-field",
    ),
    pytest.param(
        dict(json={"question": "x", "sources": "a.txt"}),
        422,
        error(422, INVALID, {"sources": ["Not a valid list."]}),
        id="sources-not-list",
    ),
    pytest.param(
        dict(json={"question": "x", "sources": []}),
        422,
        error(422, INVALID, {"sources": ["Length must be between 1 and 100."]}),
        id="sources-empty",
    ),
    pytest.param(
        dict(json={"question": "x", "sources": ["nope.txt"]}),
        422,
        error(422, INVALID, {"sources": ["Unknown source: nope.txt"]}),
        id="sources-unknown",
    ),
    pytest.param(
        dict(json={"question": "x" * 17000}),
        413,
        error(413, "The request body is larger than 16384 bytes."),
        id="too-large",
    ),
]


@pytest.mark.parametrize(("request_kwargs", "status", "body"), BAD_INPUTS)
def test_bad_post_bodies_get_one_json_error_shape(client, request_kwargs, status, body):
    response = client.post(ASK, **request_kwargs)
    assert response.status_code == status
    assert response.content_type == "application/json"
    assert response.get_json() == body


NOT_FOUND = (
    "The requested URL was not found on the server. "
    "If you entered the URL manually please check your spelling and try again."
)
BAD_REQUESTS = [
    pytest.param(
        "GET",
        ASK,
        422,
        error(422, INVALID, {"q": ["Missing data for required field."]}),
        id="get-missing-q",
    ),
    pytest.param(
        "GET",
        ASK + "?q=court&k=abc",
        422,
        error(422, INVALID, {"k": ["Not a valid integer."]}),
        id="get-bad-k",
    ),
    pytest.param(
        "GET",
        ASK + "?q=court&limit=3",
        422,
        error(422, INVALID, {"limit": ["Unknown field."]}),
        id="get-unknown-param",
    ),
    pytest.param("GET", "/api/v1/nope", 404, error(404, NOT_FOUND), id="unknown-route"),
    pytest.param(
        "GET",
        "/api/v1/sources/nope.txt",
        404,
        error(404, "Unknown source: nope.txt"),
        id="unknown-source",
    ),
    pytest.param(
        "GET",
        "/api/v1/sources/..%2F..%2Fetc%2Fpasswd",
        404,
        error(404, "Unknown source: ../../etc/passwd"),
        id="traversal",
    ),
    pytest.param(
        "DELETE",
        ASK,
        405,
        error(405, "The method is not allowed for the requested URL."),
        id="method",
    ),
    pytest.param(
        "PATCH",
        "/api/v1/sources",
        405,
        error(405, "The method is not allowed for the requested URL."),
        id="method-sources",
    ),
    pytest.param(
        "POST",
        "/api/v1/sources",
        401,
        error(401, "This needs an API key: send it as 'Authorization: Bearer <key>'."),
        id="write-without-key",
    ),
]


@pytest.mark.parametrize(("method", "path", "status", "body"), BAD_REQUESTS)
def test_bad_requests_get_one_json_error_shape(client, method, path, status, body):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.content_type == "application/json"
    assert response.get_json() == body


def test_405_says_which_methods_are_allowed(client):
    response = client.delete(ASK)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_an_unexpected_failure_is_a_json_500_without_a_trace(client, app, monkeypatch):
    from qa_service.retrieval import search

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(search, "ask", explode)
    response = client.post(ASK, json={"question": "court"})
    assert response.status_code == 500
    assert response.get_json()["error"]["status"] == 500
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_sources_list_and_one_source(client, seed_texts):
    body = client.get("/api/v1/sources").get_json()
    listed = SourceListSchema().load(body)["sources"]
    assert [source.name for source in listed] == sorted(seed_texts)
    assert all(source.passages > 0 and source.title for source in listed)
    name = listed[0].name
    document = SourceDocumentSchema().load(client.get(f"/api/v1/sources/{name}").get_json())
    assert document.text == seed_texts[name]
    assert document.title == listed[0].title


def test_health_and_readiness(app, client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready"
    assert ready["passages"] > 40
    assert ready["generation"] == app.extensions["qa_index"].engine.current_name()


def test_not_ready_without_an_index(tmp_path):
    from qa_service.web.app import create_app

    client = create_app({"INDEX_DIR": str(tmp_path / "none")}).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    # The cause (with paths) is for the log; clients learn only that it is unavailable.
    assert response.get_json() == {
        "status": "unavailable",
        "reason": "The index is not available; try again later.",
    }
    response = client.post(ASK, json={"question": "court"})
    assert response.status_code == 503
    assert response.get_json() == error(503, "The index is not available; try again later.")
    assert client.get("/healthz").status_code == 200


def test_openapi_documents_every_route(app, client):
    spec = client.get("/openapi.json").get_json()
    validate_openapi(spec)
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        assert path in spec["paths"], path
        documented = {key.upper() for key in spec["paths"][path] if key != "parameters"}
        assert documented == rule.methods - {"HEAD", "OPTIONS"}, path
    schemas = spec["components"]["schemas"]
    assert {"AskRequest", "Answers", "Citation", "Error"} <= set(schemas)
    assert schemas["AskRequest"]["properties"]["k"]["maximum"] == 50


def test_citation_urls_come_from_the_public_url_whatever_the_host_says(index_dir):
    from qa_service.web.app import create_app

    app = create_app(
        {"INDEX_DIR": str(index_dir), "PROXY_HOPS": 1, "PUBLIC_URL": "https://qa.example.org/"}
    )
    for headers in (
        {},
        {"Host": "evil.example"},
        {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"},
    ):
        response = app.test_client().post(ASK, json={"question": "court"}, headers=headers)
        citation = response.get_json()["passages"][0]["citation"]
        assert citation["url"].startswith("https://qa.example.org/sources/"), headers


def test_a_path_prefix_from_a_trusted_proxy_joins_the_public_url(index_dir):
    from qa_service.web.app import create_app

    app = create_app(
        {"INDEX_DIR": str(index_dir), "PROXY_HOPS": 1, "PUBLIC_URL": "https://example.org"}
    )
    headers = {"X-Forwarded-Prefix": "/qa"}
    body = app.test_client().post(ASK, json={"question": "court"}, headers=headers).get_json()
    assert body["passages"][0]["citation"]["url"].startswith("https://example.org/qa/sources/")


def test_forwarded_headers_are_ignored_without_a_proxy(client):
    headers = {"X-Forwarded-Prefix": "/evil", "X-Forwarded-Host": "evil.example"}
    body = client.post(ASK, json={"question": "court"}, headers=headers).get_json()
    assert body["passages"][0]["citation"]["url"].startswith("/sources/")


def test_only_trusted_hosts_are_answered_when_configured(index_dir):
    from qa_service.web.app import create_app

    app = create_app({"INDEX_DIR": str(index_dir), "TRUSTED_HOSTS": "qa.example.org, localhost"})
    client = app.test_client()
    assert client.get("/api/v1/sources", headers={"Host": "qa.example.org"}).status_code == 200
    refused = client.get("/api/v1/sources", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["status"] == 400


def test_every_response_carries_a_request_id(client):
    echoed = client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["X-Request-ID"] == "trace-42"
    made = client.get("/healthz", headers={"X-Request-ID": "not valid!" * 20})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    assert client.post(ASK, json={}).headers["X-Request-ID"]


def test_metrics_count_requests_by_route_and_status(client):
    client.get("/healthz")
    client.post(ASK, json={"question": "court"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'qa_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert (
        'qa_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/api/v1/ask",status="200"}'
        in text
    )
    assert re.search(r"^qa_index_passages \d+", text, re.M)
    assert re.search(r'^qa_index_generation\{generation="gen-[^"]+"\} 1\.0', text, re.M)

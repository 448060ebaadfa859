"""The JSON API under /api/v1: validate, call the domain, dump the response."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, request
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

from . import citations, search
from .openapi import document, json_content
from .results import Citation, with_citation_urls
from .schemas import (
    AnswersSchema,
    AskQuerySchema,
    AskRequestSchema,
    ErrorSchema,
    SourceDocumentSchema,
    SourceListSchema,
    SourceQuerySchema,
    VerifiedSchema,
    VerifyRequestSchema,
)
from .serving import current_generation, source_url, source_version

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

_ask_request = AskRequestSchema()
_ask_query = AskQuerySchema()
_answers = AnswersSchema()
_source_list = SourceListSchema()
_source_document = SourceDocumentSchema()
_source_query = SourceQuerySchema()
_verify_request = VerifyRequestSchema()
_verified = VerifiedSchema()

_ERRORS = {"default": json_content(ErrorSchema, "Error (the same shape for every /api error)")}


@blueprint.route("/ask", methods=["GET", "POST"])
@document(
    get={
        "summary": "Answer a question given in the query string",
        "parameters": [{"in": "query", "schema": AskQuerySchema}],
        "responses": {"200": json_content(AnswersSchema), **_ERRORS},
    },
    post={
        "summary": "Answer a question",
        "requestBody": {"required": True, **json_content(AskRequestSchema, "The question")},
        "responses": {"200": json_content(AnswersSchema), **_ERRORS},
    },
)
def ask():
    """Ranked, cited passages that answer a question."""
    if request.method == "POST":
        params = _ask_request.load(_json_object())
    else:
        params = _ask_query.load(request.args.to_dict())
    started = time.perf_counter()
    generation = current_generation()
    sources = params.get("sources")
    unknown = [name for name in sources or () if name not in generation.sources]
    if unknown:
        raise ValidationError({"sources": [f"Unknown source: {name}" for name in unknown]})
    # Everything that decides the body (citation URLs come from configuration, not
    # from the request, so one body serves every client).
    key = (
        generation.name,
        params["question"],
        params["k"],
        sources and tuple(sources),
    )
    cache = current_app.extensions["qa_answer_cache"]
    body = cache.get(key)
    if body is None:
        answers = search.ask(generation, params["question"], k=params["k"], sources=sources)
        linked = with_citation_urls(answers, lambda citation: source_url(citation, external=True))
        body = cache.put(key, _answers.dump(linked))
    return {**body, "took_ms": round((time.perf_counter() - started) * 1000, 3)}


@blueprint.route("/sources")
@document(
    get={
        "summary": "List the indexed sources",
        "responses": {"200": json_content(SourceListSchema), **_ERRORS},
    }
)
def sources():
    """Every indexed source with its title and passage count."""
    return _source_list.dump({"sources": list(current_generation().sources.values())})


@blueprint.route("/sources/<path:name>")
@document(
    get={
        "summary": "One source with its full text (now, or the version a citation indexed)",
        "parameters": [{"in": "query", "schema": SourceQuerySchema}],
        "responses": {"200": json_content(SourceDocumentSchema), **_ERRORS},
    }
)
def source(name: str):
    """A source's metadata and full text, exactly as the citations index it."""
    version = _source_query.load(request.args.to_dict()).get("version")
    if version is not None:
        found = source_version(version)
        if found is None or found.name != name:
            abort(404, f"No version {version} of {name} is kept.")
        return _source_document.dump(found)
    found = current_generation().sources.get(name)
    if found is None:
        abort(404, f"Unknown source: {name}")
    return _source_document.dump(found)


@blueprint.route("/citations/verify", methods=["POST"])
@document(
    post={
        "summary": "Whether a citation still holds, and where its words stand now",
        "requestBody": {"required": True, **json_content(VerifyRequestSchema, "A citation")},
        "responses": {"200": json_content(VerifiedSchema), **_ERRORS},
    }
)
def verify_citation():
    """Check a citation against the current version of its source."""
    cited = _verify_request.load(_json_object())
    current = current_generation().sources.get(cited["source"])
    # The current text is the cited version when their digests agree (no lookup).
    same = current is not None and current.sha256 == cited["sha256"]
    version = current if same else source_version(cited["sha256"])
    verdict = citations.verify(version, current, cited["start"], cited["end"])
    found = verdict.start is not None and current is not None
    url = None
    if found:
        span = Citation(cited["source"], current.title, verdict.start, verdict.end, 0, 0, 0, 0)
        url = source_url(span, external=True)
    return _verified.dump(
        {
            "status": verdict.status.value,
            "quoted": verdict.quoted,
            "source": cited["source"],
            "sha256": current.sha256 if current else None,
            "start": verdict.start,
            "end": verdict.end,
            "text": current.text[verdict.start : verdict.end] if found else None,
            "url": url,
        }
    )


def _json_object() -> dict:
    """The request body as a JSON object, or a 415/400 error saying what is wrong."""
    if not request.is_json:
        raise UnsupportedMediaType(
            "The body must be JSON sent with Content-Type: application/json."
        )
    data = request.get_data(cache=True)
    if request.content_length is None and len(data) >= current_app.config["MAX_CONTENT_LENGTH"]:
        # A chunked body has no length to check up front, and Werkzeug stops reading
        # it at the limit without a word: what it read is cut short, not the body.
        raise RequestEntityTooLarge()
    try:
        body = request.get_json()
    except BadRequest:
        raise BadRequest("The body is not valid JSON.") from None
    except RecursionError:
        # The standard JSON parser recurses per level; the size limit alone allows thousands.
        raise BadRequest("The body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body

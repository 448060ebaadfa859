"""The JSON API under /api/v1: validate, call the domain, dump the response."""

from __future__ import annotations

import dataclasses
import time

from flask import Blueprint, abort, current_app, request
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from . import search
from .app import current_generation
from .openapi import document, json_content
from .results import Answers, Citation
from .schemas import (
    AnswersSchema,
    AskQuerySchema,
    AskRequestSchema,
    ErrorSchema,
    SourceDocumentSchema,
    SourceListSchema,
)
from .web import source_url

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

_ask_request = AskRequestSchema()
_ask_query = AskQuerySchema()
_answers = AnswersSchema()
_source_list = SourceListSchema()
_source_document = SourceDocumentSchema()

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
    # Everything that decides the body; the host because citation URLs carry it.
    key = (
        generation.name,
        request.host_url,
        params["question"],
        params["k"],
        sources and tuple(sources),
    )
    cache = current_app.extensions["qa_answer_cache"]
    body = cache.get(key)
    if body is None:
        answers = search.ask(generation, params["question"], k=params["k"], sources=sources)
        body = cache.put(key, _answers.dump(with_source_urls(answers)))
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
        "summary": "One source with its full text",
        "responses": {"200": json_content(SourceDocumentSchema), **_ERRORS},
    }
)
def source(name: str):
    """A source's metadata and full text, exactly as the citations index it."""
    found = current_generation().sources.get(name)
    if found is None:
        abort(404, f"Unknown source: {name}")
    return _source_document.dump(found)


def with_source_urls(answers: Answers) -> Answers:
    """Fill in every citation's link to the source page at the cited span."""
    passages = [
        dataclasses.replace(
            passage,
            citation=_linked(passage.citation),
            corroborated_by=[_linked(citation) for citation in passage.corroborated_by],
            conflicts=[
                dataclasses.replace(conflict, citation=_linked(conflict.citation))
                for conflict in passage.conflicts
            ],
        )
        for passage in answers.passages
    ]
    return dataclasses.replace(answers, passages=passages)


def _linked(citation: Citation) -> Citation:
    return dataclasses.replace(citation, url=source_url(citation, external=True))


def _json_object() -> dict:
    """The request body as a JSON object, or a 415/400 error saying what is wrong."""
    if not request.is_json:
        raise UnsupportedMediaType(
            "The body must be JSON sent with Content-Type: application/json."
        )
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

"""The JSON API under /api/v1: validate, call the domain, dump the response."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, abort, current_app, g, request, url_for
from marshmallow import ValidationError
from werkzeug.exceptions import (
    BadRequest,
    Conflict,
    HTTPException,
    RequestEntityTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)

from qa_service.core import citations
from qa_service.core.corpus import ARTICLE_NAME
from qa_service.core.results import Citation
from qa_service.index.writes import (
    FAILED,
    NOT_INDEXABLE,
    NOT_WRITABLE,
    OUTCOMES_KEPT,
    STOPPED,
    NotIndexable,
    PendingWrite,
    WriterBusy,
    delete_source,
    exists,
    put_source,
    write_status,
)
from qa_service.retrieval.store import IndexUnavailable

from .openapi import document, json_content
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
from .serving import cached_answers, current_generation, require_key, source_url, source_version
from .write_schemas import SourceCreateSchema, SourceWriteSchema, WriteSchema

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

_ask_request = AskRequestSchema()
_ask_query = AskQuerySchema()
_source_list = SourceListSchema()
_source_document = SourceDocumentSchema()
_source_query = SourceQuerySchema()
_verify_request = VerifyRequestSchema()
_verified = VerifiedSchema()
_source_create = SourceCreateSchema()
_source_write = SourceWriteSchema()
_write = WriteSchema()
# Who changed which article, and how it ended: one JSON line per write.
audit = logging.getLogger("qa_service.audit")

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
    body = cached_answers(generation, params["question"], params["k"], sources)
    return {**body, "took_ms": round((time.perf_counter() - started) * 1000, 3)}


_WRITE = {"security": [{"apiKey": []}]}
# A write is answered once its files are written; it is indexed after (see index/writes.py).
_ACCEPTED = {
    "202": json_content(WriteSchema, "Accepted: being indexed; the Location says how it stands")
}
# A failed write's status says why as its request would have (the JSON error shape's fields).
_WRITE_ERRORS = {NOT_INDEXABLE: 409, NOT_WRITABLE: 503, STOPPED: 503, FAILED: 500}


@blueprint.route("/sources", methods=["GET", "POST"])
@document(
    get={
        "summary": "List the indexed sources",
        "responses": {"200": json_content(SourceListSchema), **_ERRORS},
    },
    post={
        "summary": "Add an article (needs a key with scope write)",
        "requestBody": {"required": True, **json_content(SourceCreateSchema, "The article")},
        "responses": {**_ACCEPTED, **_ERRORS},
        **_WRITE,
    },
)
def sources():
    """Every indexed source with its title and passage count; or add one."""
    if request.method == "GET":
        return _source_list.dump({"sources": list(current_generation().sources.values())})
    require_key("write")
    fields = _source_create.load(_source_body())
    name = fields.pop("name")
    with _audited("add", name):
        if exists(_corpus(), name):
            abort(409, f"There is already a source named {name}: PUT replaces it.")
        return _accepted(put_source, name, fields.pop("text"), fields)


@blueprint.route("/sources/<path:name>", methods=["GET", "PUT", "DELETE"])
@document(
    get={
        "summary": "One source with its full text (now, or the version a citation indexed)",
        "parameters": [{"in": "query", "schema": SourceQuerySchema}],
        "responses": {"200": json_content(SourceDocumentSchema), **_ERRORS},
    },
    put={
        "summary": "Add or replace an article (needs a key with scope write)",
        # Any indexed source can be read; only an article name can be written.
        "parameters": [
            {
                "in": "path",
                "name": "name",
                "required": True,
                "schema": {"type": "string", "pattern": f"^{ARTICLE_NAME.pattern}$"},
            }
        ],
        "requestBody": {"required": True, **json_content(SourceWriteSchema, "The article")},
        "responses": {**_ACCEPTED, **_ERRORS},
        **_WRITE,
    },
    delete={
        "summary": "Remove an article (needs a key with scope write)",
        "responses": {**_ACCEPTED, **_ERRORS},
        **_WRITE,
    },
)
def source(name: str):
    """A source's metadata and full text, exactly as the citations index it; or write it."""
    if request.method == "PUT":
        require_key("write")
        fields = _source_write.load(_source_body())
        with _audited("replace", name):
            if not ARTICLE_NAME.fullmatch(name):
                raise ValidationError({"name": ["A file name ending .txt or .md."]})
            return _accepted(put_source, name, fields.pop("text"), fields)
    if request.method == "DELETE":
        require_key("write")
        with _audited("delete", name):
            if not exists(_corpus(), name):
                abort(404, f"Unknown source: {name}")
            return _accepted(delete_source, name)
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


def _corpus() -> Path:
    return Path(current_app.config["SEEDS_DIR"])


def _source_body() -> dict:
    """An article to write: a JSON object, or text/plain with its fields in the query string."""
    # Articles are larger than questions: their own limit.
    request.max_content_length = current_app.config["MAX_SOURCE_BYTES"]
    if request.mimetype == "text/plain":
        data = request.get_data(cache=True)
        _refuse_cut_short(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError({"text": ["The body must be UTF-8 text."]}) from None
        return {**request.args.to_dict(), "text": text}
    return _json_object()


def _accepted(write, name: str, *arguments):
    """Make a write (put_source or delete_source) and have it indexed: 202 and its status."""
    try:
        pending: PendingWrite = write(_corpus(), name, *arguments, served=_served())
        pending.index_elsewhere(current_app.config)
    except WriterBusy as exc:
        raise Conflict(f"{exc}; try again.") from exc
    except NotIndexable as exc:
        raise Conflict(str(exc)) from exc
    except OSError as exc:
        # A read-only or full disk: the operator's to fix; the files are as they were.
        audit.error("writing %s failed: %s", name, exc)
        raise ServiceUnavailable("The articles cannot be written on this server now.") from exc
    g.write_id = pending.write.id
    status = {**vars(pending.write), "state": "indexing", "generation": None, "error": None}
    response = current_app.json.response(_write.dump(status))
    response.status_code = 202
    response.headers["Location"] = url_for("api.write", write_id=pending.write.id)
    return response


def _served() -> dict[str, int] | None:
    """The passages of each article this worker serves (None when it serves no index)."""
    try:
        return {name: found.passages for name, found in current_generation().sources.items()}
    except IndexUnavailable:
        return None


@blueprint.route("/writes/<write_id>")
@document(
    get={
        "summary": "How a write stands: indexing, done (answers come from it) or failed",
        "responses": {"200": json_content(WriteSchema), **_ERRORS},
        **_WRITE,
    }
)
def write(write_id: str):
    """A write's status, asked for with a key of scope write until it is done or failed."""
    require_key("write")
    status = write_status(_corpus(), write_id)
    if status is None:
        abort(404, f"Unknown write: {write_id} (the newest {OUTCOMES_KEPT} are kept).")
    seen_within = current_app.extensions["qa_index"].engine.seen_within
    if status["state"] == "done" and time.time() < status["finished_at"] + seen_within:
        status["state"] = "indexing"  # indexed, but some worker may still answer without it
    status["indexed"] = None
    if status["state"] == "done" and status["action"] != "delete":
        status["indexed"] = current_generation().sources.get(status["source"])
    if status["error"]:
        kind = status["error"]["kind"]
        status["error"] = {"status": _WRITE_ERRORS[kind], "message": status["error"]["message"]}
    return _write.dump(status)


@contextlib.contextmanager
def _audited(action: str, name: str):
    """One JSON line in the audit log per write: when, which key, what, and how it ended."""
    outcome = 500
    try:
        yield
        outcome = 202  # accepted: how its indexing ends, GET /api/v1/writes/<id> says
    except HTTPException as exc:
        outcome = exc.code
        raise
    except ValidationError:
        outcome = 422
        raise
    finally:
        audit.info(
            json.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "key": g.get("api_key"),
                    "action": action,
                    "source": name,
                    "status": outcome,
                    "write": g.get("write_id"),
                    "request_id": g.get("request_id"),
                },
                ensure_ascii=False,
            )
        )


def _refuse_cut_short(data: bytes) -> None:
    """413 for a chunked body Werkzeug stopped reading at the limit."""
    # A chunked body has no length to check up front, and Werkzeug stops reading
    # it at the limit without a word: what it read is cut short, not the body.
    if request.content_length is None and len(data) >= request.max_content_length:
        raise RequestEntityTooLarge()


def _json_object() -> dict:
    """The request body as a JSON object, or a 415/400 error saying what is wrong."""
    if not request.is_json:
        raise UnsupportedMediaType(
            "The body must be JSON sent with Content-Type: application/json."
        )
    _refuse_cut_short(request.get_data(cache=True))
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

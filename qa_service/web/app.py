"""The Flask application factory, error handling and the per-worker index handle."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, current_app, g, render_template, request
from flask.globals import request_ctx
from marshmallow import ValidationError
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    RequestEntityTooLarge,
    ServiceUnavailable,
)
from werkzeug.middleware.proxy_fix import ProxyFix

from qa_service.config import keys_path, load_config
from qa_service.index import IndexHandle, configured_engine
from qa_service.retrieval.store import IndexUnavailable

from . import api, health, observability, openapi, pages
from .cache import AnswerCache
from .keys import KeysFile
from .schemas import ErrorSchema
from .serving import INDEX_UNAVAILABLE, log_index_unavailable, require_key

log = logging.getLogger(__name__)
# When a client may ask again after the index was unavailable (503's Retry-After).
INDEX_RETRY_AFTER_SECONDS = 5
_error_schema = ErrorSchema()
# Pages load only their own script and stylesheet; nothing may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(config: Mapping | None = None) -> Flask:
    """Build the app: settings from defaults, QA_* variables, then `config`."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    # Keep fields in schema order: the contract reads top-down.
    app.json.sort_keys = False
    # A source name is looked up as given ("/etc/passwd" is simply unknown), never
    # redirected to a tidied path.
    app.url_map.merge_slashes = False
    # Flask answers any other Host header with 400 (in the error shape below); None: any.
    trusted = app.config["TRUSTED_HOSTS"].split(",")
    app.config["TRUSTED_HOSTS"] = [host.strip() for host in trusted if host.strip()] or None
    if hops := app.config["PROXY_HOPS"]:
        # The client's address, scheme, host and path prefix as the proxy saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    # Nothing is opened here: each gunicorn worker opens the index after the fork
    # (post_worker_init in gunicorn_conf), or on its first request.
    app.extensions["qa_index"] = IndexHandle(
        configured_engine(app.config), layer_share=app.config["LAYER_SHARE"]
    )
    if app.config["AUDIT_LOG"]:
        _log_audit_to(app.config["AUDIT_LOG"])
    app.extensions["qa_keys"] = KeysFile(keys_path(app.config))
    if app.config["READ_NEEDS_KEY"]:
        if not app.extensions["qa_keys"].current():
            raise ValueError(
                f"QA_READ_NEEDS_KEY needs a key of scope read in {keys_path(app.config)}"
                " (qa-service keys add, or QA_API_KEYS_FILE)"
            )
        app.before_request(_require_read_key)
    # Keyed on the index generation, so a rebuild never serves a stale answer.
    app.extensions["qa_answer_cache"] = AnswerCache(
        app.config["ANSWER_CACHE_SIZE"], app.config["ANSWER_CACHE_BYTES"]
    )

    app.register_blueprint(api.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_error_handler(HTTPException, _handle_http_error)
    app.register_error_handler(ValidationError, _handle_validation_error)
    app.register_error_handler(IndexUnavailable, _handle_index_unavailable)
    app.register_error_handler(Exception, _handle_unexpected_error)
    app.after_request(_add_headers)
    observability.install(app)
    return app


def _log_audit_to(path: str) -> None:
    """Append the audit log's JSON lines to `path` too (once per process)."""
    audit = api.audit
    audit.setLevel(logging.INFO)
    target = str(Path(path).resolve())
    if not any(getattr(h, "baseFilename", None) == target for h in audit.handlers):
        handler = logging.FileHandler(target, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        audit.addHandler(handler)


def _require_read_key():
    # Health and metrics stay open to load balancers and scrapers; pages and the API
    # do not (a browser sends no bearer key, so the pages answer 401).
    if request.blueprint in ("api", "web"):
        require_key("read")


def error_response(status: int, message: str, field_errors: Mapping | None = None):
    """The one JSON error body used everywhere under /api."""
    detail = {"status": status, "message": message}
    if field_errors is not None:
        detail["field_errors"] = field_errors
    return _error_schema.dump({"error": detail}), status


def _add_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if "index_generation" in g:
        response.headers["X-Index-Generation"] = g.index_generation.info.name
    return response


def _wants_json() -> bool:
    # Without a URL adapter (a Host header Werkzeug refuses) no page can be rendered.
    return request.path.startswith("/api/") or request_ctx.url_adapter is None


def _handle_http_error(exc: HTTPException):
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length
        exc.description = f"The request body is larger than {limit} bytes."
    if _wants_json():
        response = current_app.json.response(error_response(exc.code, exc.description)[0])
    else:
        response = current_app.make_response(render_template("error.html", error=exc))
    response.status_code = exc.code
    # Keep what Werkzeug would have sent, e.g. Allow on 405.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _handle_validation_error(exc: ValidationError):
    messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    return error_response(422, "The request has invalid fields.", messages)


def _handle_index_unavailable(exc: IndexUnavailable):
    # Failed on the generation this request took (a query, say): if that is damage, the
    # worker stops serving the generation now, and the log says what is damaged.
    return _unavailable(_damage_found() or exc)


def _damage_found() -> IndexUnavailable | None:
    """What damages the generation this request took (looked at now), if it took one."""
    if "index_generation" in g:
        try:
            current_app.extensions["qa_index"].verify(g.index_generation)
        except IndexUnavailable as damage:
            return damage
    return None


def _unavailable(exc: IndexUnavailable):
    log_index_unavailable(exc)
    return _handle_http_error(
        ServiceUnavailable(INDEX_UNAVAILABLE, retry_after=INDEX_RETRY_AFTER_SECONDS)
    )


def _handle_unexpected_error(exc: Exception):
    # A file of the generation damaged under the worker (a truncated segment) fails
    # wherever it is read, with whatever error its reader raises: the damage, not the
    # error, is what the client learns (503), and the worker stops serving it.
    if damage := _damage_found():
        return _unavailable(damage)
    # Logged with its trace for operators; the client only learns that it failed.
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _handle_http_error(InternalServerError())

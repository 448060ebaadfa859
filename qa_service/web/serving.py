"""Serving glue shared by the blueprints: this request's index generation, citation links."""

from __future__ import annotations

import logging

from flask import current_app, g, request, url_for
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Forbidden, Unauthorized

from qa_service.core.results import Citation, SourceDocument, with_citation_urls
from qa_service.retrieval import search
from qa_service.retrieval.store import IndexUnavailable, PassageStore

from .keys import ApiKey, match
from .schemas import AnswersSchema

log = logging.getLogger(__name__)
# What clients learn when the index cannot be served: paths and causes stay in the log.
INDEX_UNAVAILABLE = "The index is not available; try again later."


def current_generation() -> PassageStore:
    """The index generation this request uses throughout (raises IndexUnavailable).

    Taken once per request, so a response never mixes two generations; its name
    goes back in the X-Index-Generation header.
    """
    if "index_generation" not in g:
        g.index_generation = current_app.extensions["qa_index"].generation()
    return g.index_generation


_answers = AnswersSchema()


def cached_answers(
    generation: PassageStore, question: str, k: int, sources: list[str] | None = None
) -> dict:
    """The answers to a question as the API's JSON body (citation links external): from
    this worker's answer cache, else answered now and kept. The API and the search page
    share it, so a page reloaded a hundred times costs one answer."""
    # Everything that decides the body (citation URLs come from configuration, not
    # from the request, so one body serves every client).
    key = (generation.info.name, question, k, sources and tuple(sources))
    cache = current_app.extensions["qa_answer_cache"]
    body = cache.get(key)
    if body is None:
        answers = search.ask(generation, question, k=k, sources=sources)
        linked = with_citation_urls(answers, lambda citation: source_url(citation, external=True))
        body = cache.put(key, _answers.dump(linked))
    return body


def source_version(sha256: str) -> SourceDocument | None:
    """An article's text as a build indexed it, by its SHA-256 (kept VERSIONS_DAYS)."""
    return current_app.extensions["qa_index"].engine.version(sha256)


def require_key(scope: str) -> ApiKey:
    """The API key this request presents, when it may `scope`; else 401 (with
    WWW-Authenticate, saying whether no key came, the key is unknown, or this server has
    no keys at all) or 403 (a key without that scope)."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("This needs an API key: send it as 'Authorization: Bearer <key>'.")
    keys = current_app.extensions["qa_keys"].current()
    if not keys:
        raise _unauthorized(
            "This server has no API keys yet: its operator makes one with"
            " `qa-service keys add NAME --scope write`.",
            error="invalid_token",
        )
    key = match(keys, secret)
    if key is None:
        raise _unauthorized(
            "This server does not know that API key (mistyped, removed, or another server's).",
            error="invalid_token",
        )
    if scope not in key.scopes:
        raise Forbidden(f"The key {key.name!r} may not {scope}.")
    g.api_key = key.name
    return key


def _unauthorized(message: str, **challenge: str) -> Unauthorized:
    return Unauthorized(
        message,
        www_authenticate=WWWAuthenticate("bearer", {"realm": "qa_service", **challenge}),
    )


def log_index_unavailable(exc: IndexUnavailable) -> None:
    """Log why the index cannot be served, once per worker and cause, not once per request."""
    if current_app.extensions.get("qa_index_error") != str(exc):
        current_app.extensions["qa_index_error"] = str(exc)
        log.error("%s", exc)


def source_url(citation: Citation, external: bool = False) -> str:
    """Link to the source page with the cited span highlighted and in view.

    An external link (in citations that leave the page: the API, copied text) is
    made from the configured public URL, never from the request's Host header,
    which any client can set; without one it stays relative.
    """
    # One URL build per source and request: an answer cites the same few sources
    # many times over (corroborations), and building a URL is the dearer part.
    paths = g.setdefault("source_paths", {})
    if citation.source not in paths:
        paths[citation.source] = url_for("web.source", name=citation.source)
    path = f"{paths[citation.source]}?start={citation.start}&end={citation.end}"
    if citation.sha256:
        # The version cited: the page shows that text even after the article changes.
        path += f"&version={citation.sha256}"
    path += "#cited"
    public_url = current_app.config["PUBLIC_URL"] if external else ""
    return public_url.rstrip("/") + path

"""Liveness and readiness endpoints for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint

from qa_service.retrieval.store import IndexUnavailable

from . import observability
from .openapi import document, json_content, media_content
from .schemas import HealthSchema, ReadySchema
from .serving import INDEX_UNAVAILABLE, current_generation, log_index_unavailable

blueprint = Blueprint("health", __name__)
_health = HealthSchema()
_ready = ReadySchema()


@blueprint.route("/healthz")
@document(
    get={
        "summary": "The process is up",
        "responses": {"200": json_content(HealthSchema)},
    }
)
def healthz():
    """Always ok while the worker answers."""
    return _health.dump({"status": "ok"})


@blueprint.route("/readyz")
@document(
    get={
        "summary": "The index is open and answers can be served",
        "responses": {
            "200": json_content(ReadySchema, "Ready"),
            "503": json_content(ReadySchema, "The index is not available"),
        },
    }
)
def readyz():
    """Ready only when this worker has the index open; reports its size."""
    try:
        generation = current_generation()
    except IndexUnavailable as exc:
        log_index_unavailable(exc)
        return _ready.dump({"status": "unavailable", "reason": INDEX_UNAVAILABLE}), 503
    return _ready.dump(
        {
            "status": "ready",
            "generation": generation.info.name,
            "passages": generation.info.passage_count,
        }
    )


@blueprint.route("/metrics")
@document(
    get={
        "summary": "Prometheus metrics, summed over every worker",
        "responses": {"200": media_content("text/plain", "Prometheus text format")},
    }
)
def metrics():
    """Request counts and latencies by route and status, and the index served."""
    return observability.metrics_response()

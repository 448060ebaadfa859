"""Request ids, one JSON log line per request, and Prometheus metrics.

Under gunicorn the metrics are kept in prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by gunicorn_conf) so /metrics adds up every
worker; in a single process they live in the default registry.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is echoed only when it is short and plain; otherwise a new one is made.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Labels come from closed sets, so no client can grow /metrics: any other method
# (gunicorn passes made-up ones through) counts as "other", a path as its route.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "qa_http_requests_total", "HTTP requests answered.", ["route", "method", "status"]
)
LATENCY = Histogram(
    "qa_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PASSAGES = Gauge(
    "qa_index_passages", "Passages in the index generation served.", multiprocess_mode="livemax"
)
GENERATION = Gauge(
    "qa_index_generation",
    "1 for each index generation a live worker serves.",
    ["generation"],
    multiprocess_mode="livemax",
)

log = logging.getLogger("qa_service.requests")


def install(app: Flask) -> None:
    """Give every request an id, a JSON log line and its metrics."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    app.before_request(_start)
    app.after_request(_finish)


def metrics_response():
    """The metrics in Prometheus text format, summed over every worker."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE_LATEST}


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _finish(response):
    duration = time.perf_counter() - g.get("request_started", time.perf_counter())
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    # The rule, not the path: one label per route however many names are asked for.
    route = request.url_rule.rule if request.url_rule else "unmatched"
    method = request.method if request.method in METHODS else "other"
    REQUESTS.labels(route, method, str(response.status_code)).inc()
    LATENCY.labels(route, method, str(response.status_code)).observe(duration)
    record_generation()
    log.info(
        json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 3),
                "request_id": request_id,
            }
        )
    )
    return response


def record_generation() -> None:
    """Publish the generation this worker serves when it changes (in an app context)."""
    generation = current_app.extensions["qa_index"].loaded
    previous = current_app.extensions.get("qa_metrics_generation")
    if generation is None or generation.info.name == previous:
        return
    if previous:
        GENERATION.labels(previous).set(0)
    GENERATION.labels(generation.info.name).set(1)
    PASSAGES.set(generation.info.passage_count)
    current_app.extensions["qa_metrics_generation"] = generation.info.name

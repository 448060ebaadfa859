"""Production gunicorn settings, each overridable by a QA_* environment variable.

Run with `gunicorn -c python:qa_service.gunicorn_conf` (what `qa-service serve` does).
"""

import contextlib
import os
import shutil
import tempfile

wsgi_app = "qa_service.app:create_app()"
bind = os.environ.get("QA_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("QA_WORKERS", "4"))
threads = int(os.environ.get("QA_THREADS", "1"))
timeout = int(os.environ.get("QA_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("QA_GRACEFUL_TIMEOUT", "10"))
keepalive = int(os.environ.get("QA_KEEPALIVE", "5"))
loglevel = os.environ.get("QA_LOG_LEVEL", "info")
# The app writes one JSON line per request; gunicorn's own access log is off unless asked for.
accesslog = os.environ.get("QA_ACCESS_LOG") or None
errorlog = "-"
# Never preload: each worker opens its own Whoosh readers after the fork.
preload_app = False
# The control socket sits at one path per user: several services (or test
# servers) on one machine would fight over it, and nothing here uses it.
control_socket_disable = True
# Question lengths are the app's to judge (it answers 422 in its JSON shape);
# gunicorn still caps a request line at 1 MB.
limit_request_line = 0

# Metrics from every worker are summed through files in this folder
# (prometheus_client's multiprocess mode); it must be set before workers start.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="qa-metrics-")
else:
    _metrics_dir = None


def when_ready(server):
    """Say in one line at start-up when there is no usable index; the service still
    starts, answers /healthz and reports 503 on /readyz until one is built."""
    from qa_service.config import load_config
    from qa_service.index import IndexUnavailable, check_index

    try:
        server.log.info("serving index generation %s", check_index(load_config()["INDEX_DIR"]))
    except IndexUnavailable as exc:
        server.log.error("%s", exc)


def post_worker_init(worker):
    """Open the index (with its embedding model) and load the English word list in
    each worker after the fork, before its first request."""
    from qa_service.index import IndexUnavailable
    from qa_service.spelling import is_english

    is_english("warm")
    with contextlib.suppress(IndexUnavailable):
        worker.wsgi.extensions["qa_index"].generation()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from /metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder this server made for itself."""
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)

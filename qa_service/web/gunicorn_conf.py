"""Production gunicorn settings, each overridable by a QA_* environment variable.

Run with `gunicorn -c python:qa_service.web.gunicorn_conf` (what `qa-service serve` does).
"""

import contextlib
import os
import shutil
import tempfile

wsgi_app = "qa_service.web.app:create_app()"
bind = os.environ.get("QA_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("QA_WORKERS", "4"))
# gevent (web/gunicorn_worker.py): a slow client holds a connection, not a worker.
worker_class = "qa_service.web.gunicorn_worker.Worker"
# The most connections a worker holds; past them it answers 503 at once (gunicorn_worker).
worker_connections = int(os.environ.get("QA_WORKER_CONNECTIONS", "1000"))
timeout = int(os.environ.get("QA_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("QA_GRACEFUL_TIMEOUT", "10"))
# Connections are not kept alive (see gunicorn_worker); this is how long a client
# has to send a request's line and headers. Never 0: the gevent worker then
# reads them without a time limit.
keepalive = max(1, int(os.environ.get("QA_HEADER_TIMEOUT", "5")))
loglevel = os.environ.get("QA_LOG_LEVEL", "info")
# The app writes one JSON line per request; gunicorn's own access log is off unless asked for.
accesslog = os.environ.get("QA_ACCESS_LOG") or None
# Whatever the access log's format, no API key reaches it (see gunicorn_log).
logger_class = "qa_service.web.gunicorn_log.Logger"
errorlog = "-"
# Never preload: each worker opens its own Whoosh readers after the fork.
preload_app = False
# The control socket sits at one path per user: several services (or test
# servers) on one machine would fight over it, and nothing here uses it.
control_socket_disable = True
# gunicorn's own caps (answered 414 / 431 in the JSON error shape): the longest
# request line it allows, which holds a 500-character question percent-encoded;
# headers as gunicorn's defaults, fewer of them. Longer questions are the app's
# to refuse (422).
limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 8190


# Scratch files (gunicorn's worker heartbeats, the metrics below) in memory where
# possible: the image may run with a read-only root and no /tmp (Docker's
# --read-only), and a heartbeat on disk can stall a worker on a slow volume.
# TMPDIR, when set, comes first.
def _scratch_folder() -> str:
    for folder in (os.environ.get("TMPDIR"), "/dev/shm"):
        if folder and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return tempfile.gettempdir()  # raises, naming the folders it tried, when none is writable


_scratch = _scratch_folder()
worker_tmp_dir = _scratch

# Metrics from every worker are summed through files in this folder
# (prometheus_client's multiprocess mode); it must be set before workers start.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _metrics_dir = tempfile.mkdtemp(prefix="qa-metrics-", dir=_scratch)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
else:
    _metrics_dir = None


def on_starting(server):
    """Undo a write to the articles that a crash cut short, before anything is served."""
    from qa_service.config import load_config
    from qa_service.index import build_index, configured_engine
    from qa_service.index.writes import recover

    config = load_config()
    try:
        if recover(config["SEEDS_DIR"]):
            # The journal was still there, so the write never committed (nobody was told it
            # succeeded): it is undone whenever the crash came. Its build may have swapped
            # the new generation in before the crash, and then the index holds articles
            # the folder no longer does. build_index settles both cases with one rule: it
            # compares the folder's content hash with the current generation's, does
            # nothing when they agree, and builds a generation from the folder otherwise.
            report = build_index(config["SEEDS_DIR"], configured_engine(config))
            if report.built:
                server.log.info("indexed the articles as put back: %s", report.generation)
    except Exception:
        # Starting anyway serves the index there is, as when_ready does without one; a
        # journal left behind is rolled back by the next write, or the next start.
        server.log.exception(
            "recovering from an unfinished write to %s failed", config["SEEDS_DIR"]
        )


def when_ready(server):
    """Say in one line at start-up when there is no usable index; the service still
    starts, answers /healthz and reports 503 on /readyz until one is built."""
    from qa_service.config import load_config
    from qa_service.index import check_index, configured_engine
    from qa_service.retrieval.store import IndexUnavailable

    try:
        server.log.info(
            "serving index generation %s", check_index(configured_engine(load_config()))
        )
    except IndexUnavailable as exc:
        server.log.error("%s", exc)


def post_worker_init(worker):
    """Open the index (with its embedding model), load the English word list, answer one
    question and make the home page in each worker after the fork, before its first
    request; publish its generation."""
    from qa_service.retrieval import search
    from qa_service.retrieval.spelling import is_english
    from qa_service.retrieval.store import IndexUnavailable
    from qa_service.web import observability, pages

    is_english("warm")
    with contextlib.suppress(IndexUnavailable):
        generation = worker.wsgi.extensions["qa_index"].generation()
        # What an ask loads on first use (the lemmatiser's dictionary, the models'
        # sessions) is loaded here, before the worker takes traffic: else its first
        # question costs about 200 ms.
        search.ask(generation, "Which questions were answered before the first one?")
    # The home page too: its template compiled, and what it says of the articles (drawn
    # from them, per generation) made before a reader waits for it.
    with worker.wsgi.test_request_context("/"):
        pages.search_page()
    # From its start, so /metrics names the generation of every live worker, also of one
    # that has answered nothing yet.
    with worker.wsgi.app_context():
        observability.record_generation()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from /metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder this server made for itself."""
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)

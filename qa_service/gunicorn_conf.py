"""Production gunicorn settings, each overridable by a QA_* environment variable.

Run with `gunicorn -c python:qa_service.gunicorn_conf` (what `qa-service serve` does).
"""

import os

wsgi_app = "qa_service.app:create_app()"
bind = os.environ.get("QA_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("QA_WORKERS", "4"))
threads = int(os.environ.get("QA_THREADS", "1"))
timeout = int(os.environ.get("QA_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("QA_GRACEFUL_TIMEOUT", "10"))
keepalive = int(os.environ.get("QA_KEEPALIVE", "5"))
loglevel = os.environ.get("QA_LOG_LEVEL", "info")
accesslog = os.environ.get("QA_ACCESS_LOG", "-")
errorlog = "-"
# Never preload: each worker opens its own Whoosh readers after the fork.
preload_app = False

"""Lets a plain `gunicorn` run in the repository pick up the service settings."""

from qa_service.gunicorn_conf import *  # noqa: F403

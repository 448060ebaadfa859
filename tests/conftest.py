"""Shared fixtures: the seed index, the Flask app, and a real gunicorn server."""

from __future__ import annotations

from pathlib import Path

import pytest
from postgres_support import postgres_server
from support import ROOT, gunicorn_server

from qa_service.app import create_app
from qa_service.config import ENVIRONMENT, load_config
from qa_service.corpus import read_corpus
from qa_service.index import build_index, configured_engine

SEEDS = ROOT / "seeds"
QUESTIONS = Path(__file__).parent / "data" / "questions.jsonl"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    """The repository's seed articles (read only)."""
    return SEEDS


@pytest.fixture(scope="session")
def questions_path() -> Path:
    """The project's copy of the evaluation questions with gold spans."""
    return QUESTIONS


@pytest.fixture(scope="session")
def seed_texts() -> dict[str, str]:
    """Seed article texts by name, read the way any client would read them."""
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))}


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    """An index of the seed articles, built once for the session."""
    folder = tmp_path_factory.mktemp("index")
    build_index(SEEDS, folder)
    return folder


@pytest.fixture(scope="session")
def postgres_index(seeds_dir):
    """The seed articles indexed into a PostgreSQL server of their own (QA_* settings)."""
    with postgres_server() as server:
        settings = {"QA_BACKEND": "postgres", "QA_DATABASE_URL": server.url}
        build_index(seeds_dir, configured_engine(load_config(_as_config(settings))))
        yield settings


def _as_config(environment: dict[str, str]) -> dict[str, str]:
    return {ENVIRONMENT[name]: value for name, value in environment.items()}


# The engines every API, page, client and serving test runs against.
BACKENDS = ["whoosh", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend_settings(request, index_dir) -> dict[str, str]:
    """QA_* settings that serve the seed index from one engine, then the other."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_index")
    return {"QA_BACKEND": "whoosh", "QA_INDEX": str(index_dir)}


@pytest.fixture()
def app(backend_settings):
    return create_app({**_as_config(backend_settings), "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(index_dir, backend_settings, tmp_path_factory):
    """The production gunicorn config serving the seed index on a free loopback port."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "error.log"
    with gunicorn_server(index_dir, log_path, **backend_settings) as url:
        yield url


@pytest.fixture(scope="session")
def seed_articles():
    return read_corpus(SEEDS)

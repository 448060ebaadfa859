"""Shared fixtures: the seed index, the Flask app, and a real gunicorn server."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import ROOT, gunicorn_server

from qa_service.app import create_app
from qa_service.corpus import read_corpus
from qa_service.index import build_index

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


@pytest.fixture()
def app(index_dir):
    return create_app({"INDEX_DIR": str(index_dir), "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(index_dir, tmp_path_factory):
    """The production gunicorn config serving the seed index on a free loopback port."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "error.log"
    with gunicorn_server(index_dir, log_path) as url:
        yield url


@pytest.fixture(scope="session")
def seed_articles():
    return read_corpus(SEEDS)

"""Shared fixtures: the seed index, the Flask app, and a real gunicorn server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qa_service.app import create_app
from qa_service.corpus import read_corpus
from qa_service.index import build_index

ROOT = Path(__file__).resolve().parent.parent
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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, QA_BIND=f"127.0.0.1:{port}", QA_INDEX=str(index_dir), QA_WORKERS="2")
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:qa_service.gunicorn_conf"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, server, log_path)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


def _wait_until_ready(url: str, server: subprocess.Popen, log_path: Path, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn at {url} was not ready within {timeout} s")


@pytest.fixture(scope="session")
def seed_articles():
    return read_corpus(SEEDS)

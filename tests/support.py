"""Real parts for tests and screenshots: indexes, a gunicorn server and a Chromium browser."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from qa_service.index import build_index, open_generation
from qa_service.retrieval.store import PassageStore

ROOT = Path(__file__).resolve().parent.parent


def index_of(articles: dict[str, str], folder: Path) -> PassageStore:
    """Write `articles` (name -> text) under `folder`, index them there and open the index."""
    corpus, index = folder / "articles", folder / "index"
    corpus.mkdir()
    for name, text in articles.items():
        (corpus / name).write_text(text, encoding="utf-8")
    build_index(corpus, index)
    return open_generation(index)


# Chromium as Debian installs it; QA_CHROMIUM points elsewhere.
CHROMIUM = os.environ.get("QA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps calling home, and this network refuses it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nothing listens on right now, on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The gunicorn master process, and its log file, behind each running server's base URL.
SERVERS: dict[str, subprocess.Popen] = {}
LOGS: dict[str, Path] = {}


# The service as `qa-service serve` starts it.
PRODUCTION = ("-c", "python:qa_service.web.gunicorn_conf")


@contextlib.contextmanager
def gunicorn_server(
    index_dir: Path,
    log_path: Path,
    *,
    ready: str = "/readyz",
    arguments: tuple[str, ...] = PRODUCTION,
    **environment: str,
) -> Iterator[str]:
    """Serve `index_dir` with the production gunicorn config; yield the base URL.

    Returns once `ready` answers 200 (use "/healthz" for a server without an index).
    `arguments` replace the config (the benchmarks serve a bare Flask app alike).
    """
    port = free_port()
    env = dict(os.environ, QA_INDEX=str(index_dir), QA_WORKERS="2")
    env.update(environment)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *arguments, "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    SERVERS[url], LOGS[url] = server, log_path
    try:
        _wait_until_ready(url + ready, server, log_path)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)
        del SERVERS[url], LOGS[url]


# Each live worker's generation, as /metrics publishes it (1 while a worker serves it).
_SERVED = re.compile(r'^qa_index_generation\{generation="([^"]+)"\} ([0-9.]+)$', re.M)


def wait_for_generation(url: str, name: str, timeout: float = 30.0) -> None:
    """Return once every live worker of the server at `url` serves generation `name`.

    Not "some requests in a row saw it": a worker that answered none of them may still
    serve the one before. Requests go on meanwhile, since a worker moves to a new
    generation when it answers one.
    """
    deadline = time.monotonic() + timeout
    while True:
        for _ in range(4):
            httpx.get(url + "/readyz", timeout=5)
        metrics = httpx.get(url + "/metrics", timeout=5).text
        served = {found for found, value in _SERVED.findall(metrics) if float(value) >= 1}
        if served == {name}:
            return
        assert time.monotonic() < deadline, f"workers still serve {served - {name}}"
        time.sleep(0.05)


def _wait_until_ready(url: str, server: subprocess.Popen, log_path: Path, timeout=30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn at {url} was not ready within {timeout} s")


def launch_chromium(playwright):
    """Debian's Chromium under Playwright (its own browser download does not work here)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium)"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

"""`make serve` on another folder than seeds/, as the README's quick start shows it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import httpx
import pytest
from support import ROOT, free_port

ARTICLE = """Harbour lights go dark

The port authority of Vellmouth switched off its 140 harbour lights on Tuesday to save
money. The authority said the saving would reach 2.1 million crowns a year.
"""


@pytest.mark.parametrize("how", ["make-variables", "environment"])
def test_make_serve_answers_from_the_folder_it_is_given(tmp_path, how):
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "harbour.txt").write_text(ARTICLE, encoding="utf-8")
    index = tmp_path / "index"
    port = free_port()
    env = dict(os.environ, QA_BIND=f"127.0.0.1:{port}", QA_WORKERS="1")
    command = ["make", "--no-print-directory", "serve"]
    if how == "make-variables":
        command += [f"SEEDS={articles}", f"INDEX={index}"]
    else:
        env.update(QA_SEEDS=str(articles), QA_INDEX=str(index))
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # make, qa-service and gunicorn stop together
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(url, server)
        answer = httpx.post(url + "/api/v1/ask", json={"question": "How many lights went dark?"})
        cited = answer.json()["passages"][0]["citation"]
        assert cited["source"] == "harbour.txt"
        assert (index / "current").exists()
        # The home page orients a reader on this folder too, with no configuration.
        home = httpx.get(url + "/").text
        assert '<p class="about">' in home and 'id="examples-heading"' in home
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _wait_until_ready(url: str, server: subprocess.Popen, timeout: float = 180.0) -> None:
    # The first `make serve` may install the package into the virtualenv.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"make serve exited with {server.returncode}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"make serve was not ready at {url} within {timeout} s")

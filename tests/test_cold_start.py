"""A worker takes traffic only once everything an ask needs is loaded: the first asks
after a start are as quick as warm ones, slow clients or not."""

from __future__ import annotations

import json
import shutil
import statistics
import time

import httpx
from support import gunicorn_server
from test_hardening import SLOW_CONNECTIONS, Trickle

FIRST_ASKS = 60


def test_the_first_asks_after_a_start_have_no_cold_outlier(
    seeds_dir, index_dir, questions_path, tmp_path
):
    questions = [json.loads(line)["question"] for line in questions_path.read_text().splitlines()]
    # The articles alone, with no about.toml: the home page draws its examples from them.
    articles = tmp_path / "articles"
    articles.mkdir()
    for article in seeds_dir.glob("*.txt"):
        shutil.copy(article, articles)
    settings = {
        "QA_SEEDS": str(articles),
        # The answer cache off: every ask is answered, none is a copy of an earlier one.
        "QA_ANSWER_CACHE_SIZE": "0",
        "QA_CLIENT_TIMEOUT": "4",
        "QA_HEADER_TIMEOUT": "3",
    }
    with (
        gunicorn_server(index_dir, tmp_path / "gunicorn.log", **settings) as url,
        Trickle(url, b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"y" * 200,
                SLOW_CONNECTIONS, 4, 0),
        httpx.Client(base_url=url, timeout=5) as client,
    ):  # fmt: skip
        page = client.get("/")
        latencies = []
        for turn in range(FIRST_ASKS):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/ask", json={"question": questions[turn % len(questions)]}
            )
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    assert page.status_code == 200 and 'id="examples-heading"' in page.text
    p99 = statistics.quantiles(latencies, n=100)[98]
    assert p99 < 100, f"p99 {p99:.1f} ms over the first {FIRST_ASKS} requests: {latencies[:5]}"

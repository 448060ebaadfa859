"""End to end against the real gunicorn server: HTTP, client, CLI, answer quality."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import httpx
import pytest
from support import LOGS
from test_quality import FLOORS

from qa_service.client import QAClient, QAClientError, QATransportError
from qa_service.retrieval.evaluation import evaluate, load_questions

MAX_MEDIAN_PASSAGE_CHARS = 600


def test_damages_question_over_http(live_server):
    response = httpx.post(
        f"{live_server}/api/v1/ask", json={"question": "What damages are sought?"}
    )
    assert response.status_code == 200
    texts = [passage["text"] for passage in response.json()["passages"]]
    assert any("$1,000" in text and "Stored Communications Act" in text for text in texts)


def test_client_returns_typed_results(live_server, seed_texts):
    with QAClient(live_server) as client:
        answers = client.ask("Which court is the case filed in?", k=3)
        sources = client.sources()
        document = client.source(sources[0].name)
    assert len(answers.passages) == 3
    citation = answers.passages[0].citation
    assert seed_texts[citation.source][citation.start : citation.end] == answers.passages[0].text
    assert citation.url.startswith(f"{live_server}/sources/")
    assert document.text == seed_texts[sources[0].name]


def test_client_errors_carry_status_and_body(live_server):
    with QAClient(live_server) as client, pytest.raises(QAClientError) as raised:
        client.ask("", k=3)
    assert raised.value.status == 422
    assert raised.value.body["error"]["fields"] == {
        "question": ["Length must be between 1 and 500."]
    }
    with QAClient(live_server) as client, pytest.raises(QAClientError) as raised:
        client.source("nope.txt")
    assert raised.value.status == 404


def test_client_reports_an_unreachable_service():
    with QAClient("http://127.0.0.1:9", timeout=1) as client, pytest.raises(QATransportError):
        client.ask("court")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qa_service.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_asks_a_running_service(live_server):
    result = run_cli("ask", "What damages are sought?", "--url", live_server, "--k", "2")
    assert result.returncode == 0, result.stderr
    assert "1. " in result.stdout and "2. " in result.stdout and "3. " not in result.stdout
    unwrapped = re.sub(r"\s*\n\s*\|?\s*", " ", result.stdout)
    assert "Stored Communications Act" in unwrapped
    assert "characters" in result.stdout and ".txt" in result.stdout


def test_cli_json_matches_the_local_index(live_server, index_dir):
    remote = run_cli("ask", "Is a jury trial requested?", "--url", live_server, "--json")
    local = run_cli("ask", "Is a jury trial requested?", "--index", str(index_dir), "--json")
    assert remote.returncode == 0 and local.returncode == 0, remote.stderr + local.stderr
    remote_ids = [p["id"] for p in json.loads(remote.stdout)["passages"]]
    local_ids = [p["id"] for p in json.loads(local.stdout)["passages"]]
    assert remote_ids == local_ids and remote_ids


def test_cli_rejects_a_blank_question(index_dir):
    result = run_cli("ask", "   ", "--index", str(index_dir))
    assert result.returncode == 2
    assert "Length must be between 1 and 500." in result.stderr


def test_answer_quality_over_http_holds_its_floors(live_server, questions_path, seed_texts):
    with QAClient(live_server, timeout=30) as client:
        report = evaluate(client.ask, load_questions(questions_path), seed_texts)
    assert report["bad_citations"] == 0
    assert report["median_passage_chars"] <= MAX_MEDIAN_PASSAGE_CHARS
    for metric, floor in FLOORS["questions"].items():
        assert report[metric] >= floor, report


def test_metrics_add_up_every_worker(live_server):
    def served() -> float:
        text = httpx.get(f"{live_server}/metrics").text
        pattern = r'^qa_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)'
        match = re.search(pattern, text, re.M)
        return float(match.group(1)) if match else 0.0

    before = served()
    for _ in range(40):  # a new connection each time: the requests spread over both workers
        httpx.get(f"{live_server}/healthz")
    assert served() - before == 40


def test_each_request_is_one_json_log_line(live_server):
    response = httpx.get(f"{live_server}/api/v1/sources", headers={"X-Request-ID": "log-check-1"})
    assert response.headers["X-Request-ID"] == "log-check-1"
    time.sleep(0.2)
    lines = [line for line in LOGS[live_server].read_text().splitlines() if "log-check-1" in line]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert {key: entry[key] for key in ("method", "path", "status", "request_id")} == {
        "method": "GET",
        "path": "/api/v1/sources",
        "status": 200,
        "request_id": "log-check-1",
    }
    assert entry["duration_ms"] > 0

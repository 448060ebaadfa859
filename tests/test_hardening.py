"""What a hostile or careless client can do to the real gunicorn server, and what it gets.

One test per way in: slow headers, slow bodies, huge request lines and headers,
made-up methods, chunked bodies, forged Host headers, long made-up words.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import selectors
import socket
import statistics
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest
from support import gunicorn_server

from qa_service.web.cache import AnswerCache

SLOW_CONNECTIONS = 200
QUESTIONS = [
    "What damages are sought?",
    "Which court is the case filed in?",
    "Who is the plaintiff?",
    "When did LinkedIn change its privacy policy?",
]


@pytest.fixture(scope="module")
def server(index_dir, tmp_path_factory):
    """The production config, with a short whole-request deadline so the tests stay short."""
    log = tmp_path_factory.mktemp("hardening") / "gunicorn.log"
    with gunicorn_server(index_dir, log, QA_CLIENT_TIMEOUT="4", QA_HEADER_TIMEOUT="3") as url:
        yield url


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def raw_exchange(url: str, request: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send bytes as they are; return the status, headers and body of the answer."""
    with socket.create_connection(address(url), timeout=timeout) as connection:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            connection.sendall(request)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


class Trickle:
    """Many connections each sending a request a few bytes at a time, on one thread.

    The first `at_once` bytes of the request go at once (to trickle a body, not headers).
    """

    def __init__(
        self, url: str, request: bytes, connections: int, bytes_per_second: float, at_once=0
    ):
        self.url, self.request, self.at_once = url, request, at_once
        self.connections, self.interval = connections, 1 / bytes_per_second
        self.closed_by_server: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _closed(self, selector, sent, connection, started) -> None:
        self.closed_by_server.append(time.monotonic() - started)
        selector.unregister(connection)
        connection.close()
        del sent[connection]

    def _run(self) -> None:
        started = time.monotonic()
        selector = selectors.DefaultSelector()
        sent = {}
        for _ in range(self.connections):
            connection = socket.create_connection(address(self.url), timeout=5)
            connection.sendall(self.request[: self.at_once])
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ)
            sent[connection] = self.at_once
        while sent and not self._stop.is_set():
            for connection in list(sent):
                position = sent[connection]
                try:
                    if position < len(self.request):
                        sent[connection] += connection.send(self.request[position : position + 1])
                except BlockingIOError:
                    pass
                except OSError:  # reset or broken pipe: the server closed it
                    self._closed(selector, sent, connection, started)
            for key, _ in selector.select(timeout=self.interval):
                connection = key.fileobj
                if connection not in sent:
                    continue
                try:
                    if connection.recv(4096):
                        continue  # an answer (the request was complete); wait for the close
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self._closed(selector, sent, connection, started)
        for connection in sent:
            connection.close()
        selector.close()


def ask_latencies(url: str, seconds: float) -> tuple[list[float], list]:
    """Ask questions one after another for `seconds`; latencies in ms and any failures."""
    latencies, failures = [], []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=5) as client:
        turn = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = client.post("/api/v1/ask", json={"question": QUESTIONS[turn % 4]})
                if response.status_code != 200:
                    failures.append(response.status_code)
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
            latencies.append((time.perf_counter() - started) * 1000)
            turn += 1
    return latencies, failures


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


SLOW_BODY_HEAD = (
    b"POST /api/v1/ask HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2000\r\n\r\n"
)


@pytest.mark.parametrize(
    ("request_bytes", "at_once"),
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"y" * 200, 0, id="headers"),
        pytest.param(
            SLOW_BODY_HEAD + b'{"question": "' + b"a" * 1000, len(SLOW_BODY_HEAD), id="body"
        ),
    ],
)
def test_slow_clients_cost_connections_not_workers(server, request_bytes, at_once):
    """200 connections sending 4 bytes a second; another client's questions still fly."""
    with Trickle(server, request_bytes, SLOW_CONNECTIONS, 4, at_once) as trickle:
        time.sleep(1)  # every slow connection open and sending
        latencies, failures = ask_latencies(server, seconds=4)
        time.sleep(3)
    assert failures == []
    assert len(latencies) > 20
    assert p99(latencies) < 100, f"p99 {p99(latencies):.1f} ms over {len(latencies)} questions"
    # The server, not the client, ended every slow request: within the header
    # deadline (3 s) or the whole-request one (4 s), plus slack.
    assert len(trickle.closed_by_server) == SLOW_CONNECTIONS
    assert max(trickle.closed_by_server) < 8


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"GET /api/v1/ask?q=" + b"x" * 16_000_000 + b" HTTP/1.1\r\n\r\n", 414,
                     id="16MB-request-line"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: a\r\n"
                     + b"".join(b"X-H%d: v\r\n" % n for n in range(60)) + b"\r\n", 431,
                     id="60-headers"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n",
                     431, id="9KB-header"),
        pytest.param(b"GET /healthz HTTP/1.1 extra\r\n\r\n", 400, id="bad-request-line"),
        pytest.param(b"POST /api/v1/ask HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n",
                     501, id="unsupported-transfer-coding"),
    ],
)  # fmt: skip
def test_requests_gunicorn_refuses_get_the_json_error_shape(server, request_bytes, status):
    got, headers, body = raw_exchange(server, request_bytes)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    error = httpx.Response(got, content=body).json()["error"]
    assert error["status"] == status and 0 < len(error["message"]) <= 200
    assert httpx.get(server + "/healthz").status_code == 200


def test_an_oversized_chunked_body_is_refused_with_413(server):
    chunk = b'{"question": "' + b"x" * 4000 + b'"}'
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    status, headers, answer = raw_exchange(
        server,
        b"POST /api/v1/ask HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + body,
    )
    assert status == 413
    assert httpx.Response(status, content=answer).json()["error"]["status"] == 413


def test_made_up_methods_share_one_metrics_label(server):
    for number in range(50):
        raw_exchange(server, b"FOO%d /api/v1/ask HTTP/1.1\r\nHost: a\r\n\r\n" % number)
    metrics = httpx.get(server + "/metrics").text
    methods = set(re.findall(r'^qa_http_requests_total\{[^}]*method="([^"]+)"', metrics, re.M))
    assert "FOO7" not in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "other" in methods


@pytest.mark.parametrize(
    ("host", "status"), [("evil.example:8080", 200), ("evil.example." + "x" * 4000, 400)]
)
@pytest.mark.parametrize("path", ["/api/v1/ask?q=What+damages+are+sought%3F", "/?q=damages"])
def test_the_host_header_never_reaches_a_response(server, path, host, status):
    got, headers, body = raw_exchange(
        server, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    )
    assert got == status  # Werkzeug refuses a host name no DNS could hold
    assert b"evil.example" not in body
    if status == 400:
        assert headers["Content-Type"] == "application/json"


def test_the_answer_cache_is_bounded_in_bytes():
    cache = AnswerCache(size=1000, max_bytes=10_000)
    for number in range(100):
        cache.put(("generation", f"question {number}"), {"text": "x" * 900})
    assert cache.bytes <= 10_000
    assert cache.get(("generation", "question 99")) is not None
    assert cache.get(("generation", "question 0")) is None
    cache.put(("generation", "huge"), {"text": "x" * 20_000})
    assert cache.get(("generation", "huge")) is None  # larger than the whole budget


def test_a_long_made_up_word_is_answered_without_a_spelling_search(server):
    word = "qz" * 240
    response = httpx.post(server + "/api/v1/ask", json={"question": f"What is {word}?"})
    assert response.status_code == 200
    assert response.json()["did_you_mean"] is None


CEILING = 8  # connections a worker holds (QA_WORKER_CONNECTIONS)


def test_connections_past_the_ceiling_get_a_503_at_once_then_asks_succeed(index_dir, tmp_path):
    """One worker holding 8 connections, 12 slow clients: the 4 over the ceiling and a new
    ask are refused with 503 instead of waiting; once the slow clients go, asks succeed."""
    settings = {
        "QA_WORKERS": "1",
        "QA_WORKER_CONNECTIONS": str(CEILING),
        # Longer than the test: the slow clients hold their connections until they go.
        "QA_HEADER_TIMEOUT": "60",
        "QA_CLIENT_TIMEOUT": "60",
    }
    slow = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"y" * 200
    question = {"question": "What damages are sought?"}
    with gunicorn_server(index_dir, tmp_path / "gunicorn.log", **settings) as url:
        with Trickle(url, slow, CEILING + 4, 4) as trickle:
            time.sleep(1)  # every slow connection open and sending
            # Without a ceiling this waits in the listen queue until the timeout.
            response = httpx.post(url + "/api/v1/ask", json=question, timeout=30)
            assert response.status_code == 503
            assert response.headers["Content-Type"] == "application/json"
            assert response.headers["Retry-After"] == "1"
            error = response.json()["error"]
            assert error["status"] == 503 and "try again" in error["message"]
            assert len(trickle.closed_by_server) == 4  # the slow ones past the ceiling
        deadline = time.monotonic() + 10
        while (status := httpx.post(url + "/api/v1/ask", json=question).status_code) == 503:
            assert time.monotonic() < deadline, "the slow clients' connections were never let go"
            time.sleep(0.1)
        assert status == 200
    assert "refusing connections with 503" in (tmp_path / "gunicorn.log").read_text()

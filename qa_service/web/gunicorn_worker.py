"""The gunicorn worker: gevent, so that a slow client costs a connection, not a worker.

gunicorn's sync worker serves one connection at a time: a client sending its
headers a byte at a time holds the whole process. Under gevent every connection
is a greenlet, and a worker serves up to `worker_connections` of them; the CPU
work of answering still runs one request at a time per process. Bounds on what a
client may hold:

- request line and headers: `keepalive` seconds to arrive (gunicorn reads them
  under that timeout), then the connection is closed;
- body and response: `QA_CLIENT_TIMEOUT` seconds for the whole request, so a
  body sent slowly, or an answer read slowly, cannot keep a connection for ever.

One request per connection: a kept-alive connection stays with the worker that
accepted it, and with CPU-bound requests the workers then share the load
unevenly (measured on the seeds at 16 connections without the answer cache:
p99 1.5 s against 0.13 s for sync workers). A new connection goes to whichever
worker is free to accept it, as with sync workers.

A ceiling on connections: a worker serves at most `worker_connections` at once
and answers any connection past that at once with 503 (Retry-After, the JSON
error shape) instead of leaving it in the listen queue, where it would wait,
unanswered, for a slow client's connection to end. It accepts up to REFUSING
connections more to refuse them; past those gevent stops accepting and the
kernel queues them again.

gunicorn's own answers to malformed requests (bad request line, headers over
the limits, unsupported transfer coding) come in the service's JSON error shape,
and neither they nor its log lines quote what the client sent: a request line or
header may carry an API key.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import time

import gevent
from gunicorn import util
from gunicorn.http.errors import ParseException
from gunicorn.workers.ggevent import GeventWorker

from .gunicorn_log import without_credentials

CLIENT_TIMEOUT = float(os.environ.get("QA_CLIENT_TIMEOUT", "10"))
MESSAGE_CHARS = 200
# Connections a worker may be refusing at once, past its ceiling; each takes at most
# REFUSAL_SECONDS (the client reads the 503 and closes).
REFUSING = 100
REFUSAL_SECONDS = 1.0
RETRY_AFTER_SECONDS = 1
AT_CEILING = "The server holds as many connections as it can; try again shortly."
# The attributes of gunicorn's parse errors that hold what the client sent.
CLIENT_TEXT = ("req", "method", "expect", "version", "hdr", "data", "term", "line", "host")
# How often the log says that a worker refuses connections (not once per connection).
REFUSAL_LOG_SECONDS = 10.0


def write_json_error(
    sock, status: int, reason: str, message: str, headers: tuple[str, ...] = ()
) -> None:
    """gunicorn's error answer, as the JSON body every /api error has (see app.error_response)."""
    text = f"{reason}: {message}"[:MESSAGE_CHARS] if message else reason
    body = json.dumps({"error": {"status": status, "message": text}}).encode()
    head = "".join(
        f"{line}\r\n"
        for line in (
            f"HTTP/1.1 {status} {reason}",
            "Connection: close",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *headers,
            "",
        )
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def unquoted(exc: Exception) -> Exception:
    """A gunicorn parse error without the request line or header it quotes, else `exc`."""
    if not isinstance(exc, ParseException):
        return exc
    exc = copy.copy(exc)
    for name in CLIENT_TEXT:
        if isinstance(getattr(exc, name, None), str | bytes):
            setattr(exc, name, "…")
    return exc


def refuse(client: socket.socket) -> None:
    """Answer a connection over the ceiling with 503, then close it without a reset."""
    try:
        client.setblocking(True)  # gevent's kind: a wait yields to the other connections
        write_json_error(
            client, 503, "Service Unavailable", AT_CEILING, (f"Retry-After: {RETRY_AFTER_SECONDS}",)
        )
        # Closing with the request unread would reset the connection, and the client
        # could lose the answer: read until it closes (or REFUSAL_SECONDS pass).
        client.shutdown(socket.SHUT_WR)
        with gevent.Timeout(REFUSAL_SECONDS, False):
            while client.recv(4096):
                pass
    except OSError:
        pass  # the client went first
    finally:
        util.close(client)


class Worker(GeventWorker):
    """gevent worker with a deadline per request, a ceiling on connections and JSON error
    answers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ceiling = self.worker_connections
        self.serving = 0  # connections taken, below the ceiling
        self._refusal_logged = -REFUSAL_LOG_SECONDS
        # gevent's pool (gunicorn sizes it by this): those served and those being refused.
        self.worker_connections = self.ceiling + REFUSING

    def handle(self, listener, client, addr):
        if self.serving >= self.ceiling:
            self._log_refusal()
            refuse(client)
            return
        # Greenlets switch only on I/O: nothing runs between the test and this.
        self.serving += 1
        try:
            super().handle(listener, client, addr)
        finally:
            self.serving -= 1

    def _log_refusal(self) -> None:
        now = time.monotonic()
        if now - self._refusal_logged >= REFUSAL_LOG_SECONDS:
            self._refusal_logged = now
            self.log.warning(
                "refusing connections with 503: this worker holds its ceiling of %s", self.ceiling
            )

    def handle_error(self, req, client, addr, exc):
        # gunicorn quotes the request line or header it could not parse, and the request
        # line of a failed request, in its log line (and the answer): either may carry a key.
        if hasattr(req, "uri"):
            req = copy.copy(req)
            req.uri = without_credentials(req.uri)
        super().handle_error(req, client, addr, unquoted(exc))

    def init_process(self):
        # gunicorn writes its error answers through this one function (Worker.handle_error).
        util.write_error = write_json_error
        super().init_process()

    def handle_request(self, listener_name, req, sock, addr):
        req.force_close()  # answered with "Connection: close"
        try:
            with gevent.Timeout(CLIENT_TIMEOUT):
                return super().handle_request(listener_name, req, sock, addr)
        except gevent.Timeout:
            self.log.warning("closed a request from %s after %s s", addr[0], CLIENT_TIMEOUT)
            # What gunicorn raises to end a connection (it then closes the socket).
            raise StopIteration from None

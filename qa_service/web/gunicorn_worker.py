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

gunicorn's own answers to malformed requests (bad request line, headers over
the limits, unsupported transfer coding) come in the service's JSON error shape.
"""

from __future__ import annotations

import json
import os

import gevent
from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

CLIENT_TIMEOUT = float(os.environ.get("QA_CLIENT_TIMEOUT", "10"))
# gunicorn's messages may quote the offending request line or header.
MESSAGE_CHARS = 200


def write_json_error(sock, status: int, reason: str, message: str) -> None:
    """gunicorn's error answer, as the JSON body every /api error has (see app.error_response)."""
    text = f"{reason}: {message}"[:MESSAGE_CHARS] if message else reason
    body = json.dumps({"error": {"status": status, "message": text}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class Worker(GeventWorker):
    """gevent worker with a deadline per request and JSON error answers."""

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

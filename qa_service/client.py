"""A small typed client for the JSON API.

with QAClient("http://127.0.0.1:8000") as client:
    answers = client.ask("What damages are sought?", k=3)
    for passage in answers.passages:
        print(passage.citation.source, passage.answer.text)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import quote, urljoin

import httpx
from marshmallow import ValidationError

from qa_service.core.results import (
    Answers,
    Citation,
    SourceDocument,
    SourceInfo,
    Verification,
    WriteStatus,
    with_citation_urls,
)
from qa_service.web.schemas import (
    AnswersSchema,
    SourceDocumentSchema,
    SourceListSchema,
    VerifiedSchema,
)
from qa_service.web.write_schemas import WriteSchema

# Asking how a write stands: soon at first (a small write is indexed in a second or a few),
# then at most every quarter second: an answer costs the server under a millisecond, and
# a longer pause would be most of a small write's wait.
POLL_FIRST, POLL_MAX = 0.05, 0.25


class QAError(Exception):
    """Base of every error the client raises: `.status`, `.message` and `.body` on each."""

    def __init__(self, message: str, *, status: int | None = None, body: object = None):
        text = " ".join([message, *field_messages(body)])
        super().__init__(f"{status}: {text}" if status is not None else text)
        # The HTTP status; None when no response came (nothing was answered, not even 0).
        self.status = status
        self.message = message
        # The decoded JSON error body, e.g. {"error": {"status", "message", "fields"}}.
        self.body = body


class QATransportError(QAError):
    """The service could not be reached or did not answer in time (status and body None)."""


class QAResponseError(QAError):
    """The service answered with an error status or a body that breaks the contract."""

    def __init__(self, status: int, message: str, body: object = None):
        super().__init__(message, status=status, body=body)


class QAClientError(QAResponseError):
    """A 4xx answer: the request was refused (see `body["error"]["fields"]` for 422)."""


class QAServerError(QAResponseError):
    """A 5xx answer, or a response that does not match the documented schema."""


class QAWriteTimeout(QAError):
    """A write was still being indexed when the client stopped waiting (`.write` says which)."""

    def __init__(self, message: str, write: WriteStatus):
        super().__init__(message)
        self.write = write


class QAClient:
    """Client for a running qa_service; use it as a context manager or call close()."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        write_timeout: float = 600.0,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        # How long a write waits to be indexed (a large article on a large corpus: minutes).
        self.write_timeout = write_timeout
        # Sent with every request (a service with QA_READ_NEEDS_KEY=1 wants one to read).
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=headers
        )

    def ask(self, question: str, k: int = 5, *, sources: Sequence[str] | None = None) -> Answers:
        """Ranked, cited passages answering `question`; citation URLs made absolute."""
        body: dict = {"question": question, "k": k}
        if sources is not None:
            body["sources"] = list(sources)
        answers = self._call("POST", "/api/v1/ask", AnswersSchema(), json=body)
        # A service without a configured public URL links relatively (to itself).
        return with_citation_urls(
            answers, lambda citation: citation.url and urljoin(self.base_url + "/", citation.url)
        )

    def sources(self) -> list[SourceInfo]:
        """Every indexed source."""
        return self._call("GET", "/api/v1/sources", SourceListSchema())["sources"]

    def source(self, name: str, version: str | None = None) -> SourceDocument:
        """One source with its full text: now, or the `version` (sha256) a citation indexed."""
        params = {"version": version} if version else None
        return self._call(
            "GET", "/api/v1/sources/" + quote(name), SourceDocumentSchema(), params=params
        )

    def add_source(
        self, name: str, text: str, *, wait: bool = True, **metadata: str
    ) -> SourceInfo | WriteStatus:
        """Add an article (title, publisher, date, url as metadata); needs a write key.

        Returns once answers come from it, with what is indexed of it; with
        `wait=False`, at once with the write's status (see `wait_for`).
        """
        body = {"name": name, "text": text, **metadata}
        return self._write("POST", "/api/v1/sources", wait, json=body)

    def replace_source(
        self, name: str, text: str, *, wait: bool = True, **metadata: str
    ) -> SourceInfo | WriteStatus:
        """Add or replace an article; needs a write key. Returns as add_source does."""
        body = {"text": text, **metadata}
        return self._write("PUT", "/api/v1/sources/" + quote(name), wait, json=body)

    def delete_source(self, name: str, *, wait: bool = True) -> WriteStatus | None:
        """Remove an article; needs a write key. Returns once no answer comes from it (with
        `wait=False`, at once with the write's status)."""
        return self._write("DELETE", "/api/v1/sources/" + quote(name), wait)

    def write_status(self, write_id: str) -> WriteStatus:
        """How a write stands: "indexing", "done" or "failed"."""
        return self._call("GET", "/api/v1/writes/" + quote(write_id), WriteSchema())

    def wait_for(self, write: WriteStatus) -> WriteStatus:
        """Ask how a write stands until it is done (answers come from it); a failed write
        raises its error (QAClientError, QAServerError), one still indexing after
        `write_timeout` seconds QAWriteTimeout."""
        deadline = time.monotonic() + self.write_timeout
        pause = POLL_FIRST
        while write.state == "indexing":
            if time.monotonic() + pause > deadline:
                raise QAWriteTimeout(
                    f"{write.action} {write.source}: still being indexed after "
                    f"{self.write_timeout:g} s (write {write.id})",
                    write,
                )
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX)
            write = self.write_status(write.id)
        if write.state == "failed":
            status, message = write.error["status"], write.error["message"]
            error_class = QAClientError if status < 500 else QAServerError
            raise error_class(status, message, {"error": write.error})
        return write

    def _write(self, method: str, path: str, wait: bool, **kwargs):
        accepted = self._call(method, path, WriteSchema(), **kwargs)
        return self.wait_for(accepted).indexed if wait else accepted

    def verify_citation(self, citation: Citation) -> Verification:
        """Whether a citation still holds, and where its words stand in the current text."""
        body = {
            "source": citation.source,
            "start": citation.start,
            "end": citation.end,
            "sha256": citation.sha256,
        }
        return self._call("POST", "/api/v1/citations/verify", VerifiedSchema(), json=body)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> QAClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _call(self, method: str, path: str, schema, **kwargs):
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise QATransportError(f"{method} {self._http.base_url.join(path)}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error:
            error_class = QAClientError if response.status_code < 500 else QAServerError
            message = _error_message(body) or response.reason_phrase
            raise error_class(response.status_code, message, body)
        if schema is None:
            return None
        try:
            return schema.load(body)
        except ValidationError as exc:
            raise QAServerError(
                response.status_code, f"unexpected response: {exc.messages}", body
            ) from exc


def _error_message(body: object) -> str | None:
    """The message of the service's JSON error shape, if the body has it."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("message")
    return None


def field_messages(body: object) -> list[str]:
    """The per-field messages of the service's JSON error shape (a 422's), as "field: …"."""
    error = body.get("error") if isinstance(body, dict) else None
    fields = error.get("fields") if isinstance(error, dict) else None
    if not isinstance(fields, dict):
        return []
    return [
        f"{field}: {' '.join(map(str, found)) if isinstance(found, list) else found}"
        for field, found in fields.items()
    ]

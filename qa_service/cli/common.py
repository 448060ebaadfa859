"""What the CLI's commands share: the folder, index and service options, the client
of a running service (its errors as the command's message), and answers and JSON
written out.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qa_service.config import DEFAULTS
from qa_service.core.citation_formats import line_range
from qa_service.core.results import Answers, Citation

if TYPE_CHECKING:
    from qa_service.client import QAClient, QAError


def _folder_option(flag: str, name: str, variable: str, default: str, what: str):
    """A folder option that falls back to a QA_* variable, then the service default."""
    return click.option(
        flag,
        name,
        envvar=variable,
        default=default,
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=f"{what} (env {variable}).",
    )


seeds_option = _folder_option(
    "--seeds", "seeds_dir", "QA_SEEDS", DEFAULTS["SEEDS_DIR"], "Folder of UTF-8 .txt/.md articles"
)
_folder = _folder_option("--index", "index_dir", "QA_INDEX", DEFAULTS["INDEX_DIR"], "Index folder")
_backend = click.option(
    "--backend",
    envvar="QA_BACKEND",
    default=DEFAULTS["BACKEND"],
    show_default=True,
    type=click.Choice(["whoosh", "postgres"]),
    help="Where the index lives (env QA_BACKEND).",
)
_database_url = click.option(
    "--database-url",
    envvar="QA_DATABASE_URL",
    default=DEFAULTS["DATABASE_URL"],
    help="PostgreSQL URL for --backend postgres (env QA_DATABASE_URL).",
)


def index_option(command):
    """--index, --backend and --database-url, passed on as one `engine` argument."""

    @functools.wraps(command)
    def with_engine(*args, index_dir: Path, backend: str, database_url: str, **kwargs):
        from qa_service.index import configured_engine

        config = {"INDEX_DIR": index_dir, "BACKEND": backend, "DATABASE_URL": database_url}
        return command(*args, engine=configured_engine(config), **kwargs)

    return _folder(_backend(_database_url(with_engine)))


def default_service_url() -> str:
    """Where `qa-service serve` listens: QA_BIND's address (as serve reads it), else its default."""
    host, _, port = os.environ.get("QA_BIND", "127.0.0.1:8000").rpartition(":")
    # A server bound to every address is reached on this machine's loopback.
    return f"http://{'127.0.0.1' if host in ('', '0.0.0.0', '[::]') else host}:{port}"


def service_option(command):
    """--url, --key and --timeout, passed on as one open `client` argument."""

    @functools.wraps(command)
    def with_client(*args, url: str, api_key: str | None, timeout: float, **kwargs):
        with remote(url, api_key=api_key, timeout=timeout) as client:
            return command(*args, client=client, **kwargs)

    url = click.option(
        "--url",
        envvar="QA_URL",
        default=default_service_url,
        show_default="QA_BIND's address, else http://127.0.0.1:8000",
        help="The running service (env QA_URL).",
    )
    # No default and no prompt: the secret is never shown, not even in --help.
    key = click.option(
        "--key",
        "api_key",
        envvar="QA_API_KEY",
        help="API key; writing needs one of scope write (env QA_API_KEY).",
    )
    # Per request: a write waits for its indexing by asking again (QAClient.write_timeout).
    timeout = click.option(
        "--timeout",
        default=60.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds to wait for the service.",
    )
    return url(key(timeout(with_client)))


@contextlib.contextmanager
def remote(url: str, **options) -> Iterator[QAClient]:
    """A client of the service at `url`; a QAError it raises ends the command with its message."""
    from qa_service.client import QAClient, QAError

    try:
        with QAClient(url, **options) as client:
            yield client
    except QAError as exc:
        raise click.ClickException(_error_text(exc)) from exc


def _error_text(exc: QAError) -> str:
    """The error's message with the service's per-field messages; where to look when the
    service could not be reached."""
    from qa_service.client import QATransportError

    if isinstance(exc, QATransportError):
        return f"{exc} (is `qa-service serve` running there? --url or QA_URL names another)"
    return str(exc)


def echo_json(schema, value) -> None:
    """`value` as `schema` dumps it: indented JSON, non-ASCII kept."""
    click.echo(json.dumps(schema.dump(value), ensure_ascii=False, indent=2))


def format_answers(answers: Answers) -> str:
    """Plain text: the respelling suggested, then each passage, its answer and citations."""
    # No "?" added: the respelt question usually ends with its own.
    lines = [f"Did you mean: {answers.did_you_mean}", ""] if answers.did_you_mean else []
    if not answers.passages:
        return "\n".join([*lines, "No passage matches this question."])
    if not answers.answerable:
        lines += ["The articles hold no answer; closest passages:", ""]
    for passage in answers.passages:
        lines.append(f"{passage.rank}. {passage.answer.text}")
        if passage.context_before:
            # Dimmed on a terminal (click.echo drops the styling elsewhere): not the answer.
            context = textwrap.fill(passage.context_before.text, 88)
            lines.append(click.style(textwrap.indent(context, "   : "), dim=True))
        if passage.answer.text != passage.text or passage.context_before:
            lines.append(textwrap.indent(textwrap.fill(passage.text, 88), "   | "))
        lines.append(f"   — {_cited(passage.citation)}")
        lines += [f"   also reported by {_cited(other)}" for other in passage.corroborated_by]
        lines += [
            f"   conflicting {conflict.kind}: “{conflict.value}” here,"
            f" “{conflict.other_value}” in {_cited(conflict.citation)}"
            for conflict in passage.conflicts
        ]
        lines.append("")
    return "\n".join(lines).rstrip()


def _cited(citation: Citation) -> str:
    """A citation on one line: title, source, character and line range."""
    lines = line_range(citation.line_start, citation.line_end)
    return (
        f"{citation.title} ({citation.source}, characters {citation.start}–{citation.end}, {lines})"
    )

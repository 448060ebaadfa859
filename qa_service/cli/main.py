"""The `qa-service` command: build the index, ask questions, serve, evaluate, write articles."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qa_service.config import DEFAULTS
from qa_service.core.citation_formats import line_range
from qa_service.core.results import Answers, Citation, SourceInfo
from qa_service.retrieval.evaluation import MATCH_RULES
from qa_service.web.keys import SCOPES

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


_seeds_option = _folder_option(
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


def _index_option(command):
    """--index, --backend and --database-url, passed on as one `engine` argument."""

    @functools.wraps(command)
    def with_engine(*args, index_dir: Path, backend: str, database_url: str, **kwargs):
        from qa_service.index import configured_engine

        config = {"INDEX_DIR": index_dir, "BACKEND": backend, "DATABASE_URL": database_url}
        return command(*args, engine=configured_engine(config), **kwargs)

    return _folder(_backend(_database_url(with_engine)))


@click.group()
def main() -> None:
    """Citation-backed answers from a folder of articles."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # One line per HTTP request is noise in a command's output.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@main.command()
@_seeds_option
@_index_option
@click.option(
    "--force",
    is_flag=True,
    help="Rebuild even when nothing changed (and fold the layers of writes into a full build).",
)
def index(seeds_dir: Path, engine, force: bool) -> None:
    """Build the index of passages (skipped when the articles are unchanged)."""
    from qa_service.index import build_index
    from qa_service.index.writes import recover

    try:
        # A write that a crash cut short is undone first: its files are not the articles'.
        recover(seeds_dir)
        report = build_index(seeds_dir, engine, force=force)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if report.built:
        click.echo(
            f"indexed {report.articles} articles, {report.passages} passages: {report.generation}"
        )
    else:
        click.echo(f"unchanged: {report.generation} ({report.passages} passages)")


@main.command()
@click.argument("question")
@click.option("--url", help="Ask a running service instead of the local index.")
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 50), help="Passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON response.")
@_index_option
def ask(question: str, url: str | None, k: int, as_json: bool, engine) -> None:
    """Answer QUESTION with cited passages."""
    from marshmallow import ValidationError

    from qa_service.web.schemas import AskRequestSchema

    try:
        question = AskRequestSchema().load({"question": question, "k": k})["question"]
    except ValidationError as exc:
        raise click.BadParameter(str(exc.messages["question"][0]), param_hint="QUESTION") from exc
    answers = _ask_remote(url, question, k) if url else _ask_local(engine, question, k)
    if as_json:
        from qa_service.web.schemas import AnswersSchema

        _echo_json(AnswersSchema(), answers)
    else:
        click.echo(format_answers(answers))


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(gunicorn_args: tuple[str, ...]) -> None:
    """Run the service under gunicorn (settings: QA_* variables; extra args go to gunicorn)."""
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:qa_service.web.gunicorn_conf"]
    os.execv(sys.executable, argv + list(gunicorn_args))


# The held-out questions of the clone this package runs from, wherever the command
# is started (they score the clone's seeds); an installed wheel has none.
HELD_OUT_QUESTIONS = Path(__file__).resolve().parents[2] / "tests" / "data" / "questions.jsonl"


@main.command("eval")
@click.option("--url", help="Evaluate a running service instead of the local index.")
@click.option(
    "--questions",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="JSON lines: id, question, answers [{source, start, end, text}]"
    "  [default: this clone's tests/data/questions.jsonl, held out, on the seeds]",
)
@click.option("--k", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option(
    "--match",
    default="cover",
    show_default=True,
    type=click.Choice(MATCH_RULES),
    help="cover: a passage covers half a gold span; within: half the passage lies in one.",
)
@_seeds_option
@_index_option
def evaluate_command(
    url: str | None, questions: Path | None, k: int, match: str, seeds_dir: Path, engine
):
    """Score answers against questions with gold spans; print the report as JSON."""
    from qa_service.core.corpus import read_corpus
    from qa_service.retrieval.evaluation import evaluate

    asked = _questions(questions)
    try:
        # The citations are checked against the articles' files, as a reader would.
        texts = {article.name: article.text for article in read_corpus(seeds_dir)}
    except OSError as exc:
        raise click.ClickException(
            f"{exc}: pass the articles the questions are about with --seeds DIR (or QA_SEEDS)"
        ) from exc
    if url:
        with _remote(url, timeout=30) as client:
            report = evaluate(client.ask, asked, texts, k, match)
    else:
        from qa_service.retrieval.search import ask as local_ask

        generation = _open_local(engine)
        report = evaluate(lambda q, n: local_ask(generation, q, k=n), asked, texts, k, match)
    click.echo(json.dumps(report, indent=2))


def _questions(path: Path | None) -> list[dict]:
    """The questions of `path`, else of the held-out set; a usage error if neither is there."""
    from qa_service.retrieval.evaluation import load_questions

    if path is None:
        if not HELD_OUT_QUESTIONS.is_file():
            raise click.UsageError(
                "No question set here: pass --questions FILE (JSON lines with gold spans)."
            )
        path = HELD_OUT_QUESTIONS
    try:
        return load_questions(path)
    except ValueError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="'--questions'") from exc


@main.group()
def keys() -> None:
    """API keys: stored as digests in the keys file (QA_API_KEYS_FILE)."""


_keys_file = click.option(
    "--file",
    "keys_file",
    envvar="QA_API_KEYS_FILE",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The keys file (env QA_API_KEYS_FILE).",
)


@keys.command("add")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    default=["read"],
    show_default=True,
    help="What the key may do (repeat for more).",
)
@_keys_file
def add_key_command(name: str, scopes: tuple[str, ...], keys_file: Path) -> None:
    """Make a key NAME; print its secret (shown this once, stored only as a digest)."""
    from qa_service.web.keys import add_key

    try:
        secret = add_key(keys_file, name, scopes)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(secret)


@keys.command("list")
@_keys_file
def list_keys_command(keys_file: Path) -> None:
    """The keys' names and scopes (never their secrets)."""
    from qa_service.web.keys import load_keys

    try:
        found = load_keys(keys_file)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for key in found:
        click.echo(f"{key.name}\t{','.join(key.scopes)}")


# Where `qa-service serve` listens unless QA_BIND says otherwise.
_SERVICE_URL = "http://127.0.0.1:8000"


def _service_option(command):
    """--url, --key and --timeout, passed on as one open `client` argument."""

    @functools.wraps(command)
    def with_client(*args, url: str, api_key: str | None, timeout: float, **kwargs):
        with _remote(url, api_key=api_key, timeout=timeout) as client:
            return command(*args, client=client, **kwargs)

    url = click.option(
        "--url",
        envvar="QA_URL",
        default=_SERVICE_URL,
        show_default=True,
        help="The running service (env QA_URL).",
    )
    # No default and no prompt: the secret is never shown, not even in --help.
    key = click.option(
        "--key",
        "api_key",
        envvar="QA_API_KEY",
        help="API key; writing needs one of scope write (env QA_API_KEY).",
    )
    # A write that outgrows its layer rebuilds the whole index before the service answers.
    timeout = click.option(
        "--timeout",
        default=60.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds to wait for the service.",
    )
    return url(key(timeout(with_client)))


def _article_option(command):
    """FILE, --name and the metadata options, passed on as `name`, `text` and `metadata`."""

    @functools.wraps(command)
    def with_article(
        *args,
        file: Path,
        name: str | None,
        title: str | None,
        publisher: str | None,
        date: str | None,
        article_url: str | None,
        **kwargs,
    ):
        given = {"title": title, "publisher": publisher, "date": date, "url": article_url}
        metadata = {field: value for field, value in given.items() if value is not None}
        text = _read_utf8(file)
        return command(*args, name=name or file.name, text=text, metadata=metadata, **kwargs)

    file = click.argument(
        "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
    )
    name = click.option("--name", help="The source's name (.txt or .md)  [default: FILE's name]")
    title = click.option("--title", help="Shown with citations; else the article's first line.")
    publisher = click.option("--publisher", help="Who published it.")
    date = click.option("--date", help="When, as written by the publisher.")
    article_url = click.option("--article-url", help="Where the original article is.")
    return file(name(title(publisher(date(article_url(with_article))))))


_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the JSON the service returned."
)


@main.group()
def sources() -> None:
    """Articles of a running service: list them, or write them with a key of scope write."""


@sources.command("list")
@_json_option
@_service_option
def list_sources_command(as_json: bool, client: QAClient) -> None:
    """Every indexed source: name, passages and title."""
    from qa_service.web.schemas import SourceListSchema

    found = client.sources()
    if as_json:
        _echo_json(SourceListSchema(), {"sources": found})
        return
    for info in found:
        click.echo(f"{info.name}\t{info.passages}\t{info.title}")


@sources.command("add")
@_article_option
@_json_option
@_service_option
def add_source_command(
    name: str, text: str, metadata: dict[str, str], as_json: bool, client: QAClient
) -> None:
    """Add the UTF-8 article FILE (refused if its name is taken)."""
    _echo_source("added", client.add_source(name, text, **metadata), as_json)


@sources.command("replace")
@_article_option
@_json_option
@_service_option
def replace_source_command(
    name: str, text: str, metadata: dict[str, str], as_json: bool, client: QAClient
) -> None:
    """Replace (or add) an article with FILE; metadata options left out are dropped."""
    _echo_source("written", client.replace_source(name, text, **metadata), as_json)


@sources.command("delete")
@click.argument("name")
@_service_option
def delete_source_command(name: str, client: QAClient) -> None:
    """Remove the article NAME and its metadata."""
    client.delete_source(name)
    click.echo(f"deleted {name}")


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
        if passage.answer.text != passage.text:
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


def _open_local(engine):
    from qa_service.index import open_generation
    from qa_service.retrieval.store import IndexUnavailable

    try:
        return open_generation(engine)
    except IndexUnavailable as exc:
        raise click.ClickException(str(exc)) from exc


def _ask_local(engine, question: str, k: int) -> Answers:
    from qa_service.retrieval.search import ask as local_ask

    return local_ask(_open_local(engine), question, k=k)


def _ask_remote(url: str, question: str, k: int) -> Answers:
    with _remote(url) as client:
        return client.ask(question, k=k)


@contextlib.contextmanager
def _remote(url: str, **options) -> Iterator[QAClient]:
    """A client of the service at `url`; a QAError it raises ends the command with its message."""
    from qa_service.client import QAClient, QAError

    try:
        with QAClient(url, **options) as client:
            yield client
    except QAError as exc:
        raise click.ClickException(_error_text(exc)) from exc


def _error_text(exc: QAError) -> str:
    """The error's message, then the service's per-field messages (those of a 422)."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    fields = error.get("fields") if isinstance(error, dict) else None
    if not isinstance(fields, dict):
        return str(exc)
    lines = (
        f"{field}: {' '.join(map(str, found)) if isinstance(found, list) else found}"
        for field, found in fields.items()
    )
    return " ".join([str(exc), *lines])


def _read_utf8(path: Path) -> str:
    """The text of an article file, or a usage error when it is not UTF-8."""
    try:
        # Decoded as the corpus reader decodes articles, so what is sent is what it indexes.
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).", param_hint="'FILE'"
        ) from exc


def _echo_source(done: str, info: SourceInfo, as_json: bool) -> None:
    """One written source: the JSON the service returned, or one line saying what was done."""
    if as_json:
        from qa_service.web.schemas import SourceInfoSchema

        _echo_json(SourceInfoSchema(), info)
    else:
        passages = "passage" if info.passages == 1 else "passages"
        click.echo(f"{done} {info.name} ({info.passages} {passages}): {info.title}")


def _echo_json(schema, value) -> None:
    click.echo(json.dumps(schema.dump(value), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

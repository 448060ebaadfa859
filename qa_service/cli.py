"""The `qa-service` command: build the index, ask questions, serve, evaluate."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import click

from .config import DEFAULTS
from .evaluation import MATCH_RULES
from .keys import SCOPES
from .results import Answers


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
        from .index import configured_engine

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
@click.option("--force", is_flag=True, help="Rebuild even when nothing changed.")
def index(seeds_dir: Path, engine, force: bool) -> None:
    """Build the index of passages (skipped when the articles are unchanged)."""
    from .index import build_index

    try:
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

    from .schemas import AskRequestSchema

    try:
        question = AskRequestSchema().load({"question": question, "k": k})["question"]
    except ValidationError as exc:
        raise click.BadParameter(str(exc.messages["question"][0]), param_hint="QUESTION") from exc
    answers = _ask_remote(url, question, k) if url else _ask_local(engine, question, k)
    if as_json:
        from .schemas import AnswersSchema

        click.echo(json.dumps(AnswersSchema().dump(answers), ensure_ascii=False, indent=2))
    else:
        click.echo(format_answers(answers))


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve(gunicorn_args: tuple[str, ...]) -> None:
    """Run the service under gunicorn (settings: QA_* variables; extra args go to gunicorn)."""
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:qa_service.gunicorn_conf"]
    os.execv(sys.executable, argv + list(gunicorn_args))


@main.command("eval")
@click.option("--url", help="Evaluate a running service instead of the local index.")
@click.option(
    "--questions",
    default="tests/data/questions.jsonl",
    show_default=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
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
def evaluate_command(url: str | None, questions: Path, k: int, match: str, seeds_dir: Path, engine):
    """Score answers against questions with gold spans; print the report as JSON."""
    from .corpus import read_corpus
    from .evaluation import evaluate, load_questions

    texts = {article.name: article.text for article in read_corpus(seeds_dir)}
    if url:
        from .client import QAClient

        with QAClient(url, timeout=30) as client:
            report = evaluate(client.ask, load_questions(questions), texts, k, match)
    else:
        generation = _open_local(engine)
        from .search import ask as local_ask

        report = evaluate(
            lambda q, n: local_ask(generation, q, k=n), load_questions(questions), texts, k, match
        )
    click.echo(json.dumps(report, indent=2))


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
    from .keys import add_key

    try:
        secret = add_key(keys_file, name, scopes)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(secret)


@keys.command("list")
@_keys_file
def list_keys_command(keys_file: Path) -> None:
    """The keys' names and scopes (never their secrets)."""
    from .keys import load_keys

    try:
        found = load_keys(keys_file)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for key in found:
        click.echo(f"{key.name}\t{','.join(key.scopes)}")


def format_answers(answers: Answers) -> str:
    """Plain-text rendering: each passage, its answer and its citation."""
    if not answers.passages:
        return "No passage matches this question."
    lines = [] if answers.answerable else ["The articles hold no answer; closest passages:", ""]
    for passage in answers.passages:
        citation = passage.citation
        lines.append(f"{passage.rank}. {passage.answer.text}")
        if passage.answer.text != passage.text:
            lines.append(textwrap.indent(textwrap.fill(passage.text, 88), "   | "))
        lines.append(
            f"   — {citation.title} ({citation.source}, characters {citation.start}–{citation.end},"
            f" lines {citation.line_start}–{citation.line_end})"
        )
        lines.append("")
    return "\n".join(lines).rstrip()


def _open_local(engine):
    from .index import open_generation
    from .store import IndexUnavailable

    try:
        return open_generation(engine)
    except IndexUnavailable as exc:
        raise click.ClickException(str(exc)) from exc


def _ask_local(engine, question: str, k: int) -> Answers:
    from .search import ask as local_ask

    return local_ask(_open_local(engine), question, k=k)


def _ask_remote(url: str, question: str, k: int) -> Answers:
    from .client import QAClient, QAError

    try:
        with QAClient(url) as client:
            return client.ask(question, k=k)
    except QAError as exc:
        raise click.ClickException(str(exc)) from exc


if __name__ == "__main__":
    main()

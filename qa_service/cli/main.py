"""The `qa-service` command: the group, and building the index, asking, serving and
evaluating; the `sources` and `keys` groups are in modules of their own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from qa_service.core.results import Answers
from qa_service.retrieval.evaluation import MATCH_RULES

from .common import echo_json, format_answers, index_option, remote, seeds_option
from .keys import keys
from .sources import sources


@click.group()
def main() -> None:
    """Citation-backed answers from a folder of articles."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # One line per HTTP request is noise in a command's output.
    logging.getLogger("httpx").setLevel(logging.WARNING)


main.add_command(keys)
main.add_command(sources)


@main.command()
@seeds_option
@index_option
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
@index_option
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

        echo_json(AnswersSchema(), answers)
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
@seeds_option
@index_option
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
        with remote(url, timeout=30) as client:
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
    with remote(url) as client:
        return client.ask(question, k=k)


if __name__ == "__main__":
    main()

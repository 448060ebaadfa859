"""The `qa-service` command through click's CliRunner: index, ask, eval and keys."""

from __future__ import annotations

import json
import re

import click
import pytest
from click.testing import CliRunner
from support import free_port

from qa_service.cli import main
from qa_service.cli.common import format_answers
from qa_service.config import ENVIRONMENT
from qa_service.core.results import AnswerPassage, Answers, AnswerSpan, Citation, Conflict
from qa_service.index import open_generation
from qa_service.retrieval.evaluation import evaluate, load_questions
from qa_service.retrieval.search import ask
from qa_service.web.schemas import AnswersSchema

MISSPELT = "What damgaes are sought?"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No QA_* setting from the shell running the tests: each command gets what it is given."""
    for variable in [*ENVIRONMENT, "QA_URL", "QA_API_KEY"]:
        monkeypatch.delenv(variable, raising=False)


def _invoke(*arguments: str, **options):
    return CliRunner().invoke(main, list(arguments), **options)


def _cited(citation: Citation) -> str:
    """How a citation line starts (its line range is checked on hand-made answers below)."""
    return f"{citation.title} ({citation.source}, characters {citation.start}–{citation.end}, "


@pytest.fixture(scope="module")
def misspelt_answers(index_dir) -> Answers:
    """What the local index answers to the misspelt question, read directly."""
    return ask(open_generation(index_dir), MISSPELT, k=3)


def test_index_builds_once_then_finds_nothing_changed(tmp_path):
    corpus, index = tmp_path / "articles", tmp_path / "index"
    corpus.mkdir()
    (corpus / "bridge.txt").write_text(
        "Bridge Reopens\n\nThe river bridge reopened on Monday after a year of repairs.\n"
    )
    arguments = ["index", "--seeds", str(corpus), "--index", str(index)]
    built = _invoke(*arguments)
    assert built.exit_code == 0, built.output
    found = re.fullmatch(r"indexed 1 articles, (\d+) passages: (\S+)\n", built.stdout)
    assert found, built.stdout
    passages, generation = found.groups()
    again = _invoke(*arguments)
    assert again.stdout == f"unchanged: {generation} ({passages} passages)\n"
    forced = _invoke(*arguments, "--force")
    assert forced.stdout.startswith("indexed 1 articles, ")
    assert generation not in forced.stdout


def test_index_without_articles_says_where_it_looked(tmp_path):
    result = _invoke("index", "--seeds", str(tmp_path / "none"), "--index", str(tmp_path / "i"))
    assert result.exit_code == 1
    assert f"corpus folder not found: {tmp_path / 'none'}" in result.stderr


def test_ask_shows_the_respelling_and_who_else_reports_it(index_dir, misspelt_answers):
    result = _invoke("ask", MISSPELT, "--index", str(index_dir), "--k", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Did you mean: What damages are sought?", ""]
    passages = misspelt_answers.passages
    others = [other for passage in passages for other in passage.corroborated_by]
    assert others
    cited = [line for line in lines if line.startswith("   — ")]
    assert len(cited) == len(passages)
    for line, passage in zip(cited, passages, strict=True):
        assert line.startswith(f"   — {_cited(passage.citation)}")
    reported = [line for line in lines if line.startswith("   also reported by ")]
    assert len(reported) == len(others)
    for line, other in zip(reported, others, strict=True):
        assert line.startswith(f"   also reported by {_cited(other)}")


def test_ask_shows_where_sources_disagree(index_dir):
    question = "When did LinkedIn change its privacy policy?"
    answers = ask(open_generation(index_dir), question, k=5)
    conflicts = [conflict for passage in answers.passages for conflict in passage.conflicts]
    assert conflicts
    result = _invoke("ask", question, "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    shown = [line for line in result.stdout.splitlines() if line.startswith("   conflicting ")]
    assert len(shown) == len(conflicts)
    for line, conflict in zip(shown, conflicts, strict=True):
        assert line.startswith(
            f"   conflicting {conflict.kind}: “{conflict.value}” here, “{conflict.other_value}”"
            f" in {_cited(conflict.citation)}"
        )


def test_ask_json_prints_every_field(index_dir, misspelt_answers):
    result = _invoke("ask", MISSPELT, "--index", str(index_dir), "--k", "3", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    expected = AnswersSchema().dump(misspelt_answers)
    assert printed.pop("took_ms") >= 0
    expected.pop("took_ms")
    assert printed == expected
    assert printed["did_you_mean"] == "What damages are sought?"
    assert any(passage["corroborated_by"] for passage in printed["passages"])
    assert all("conflicts" in passage for passage in printed["passages"])


CITED = Citation("a.txt", "Harbour Wall", 10, 60, 10, 60, 3, 3)
OTHER = Citation("b.txt", "Port Authority Report", 200, 280, 204, 284, 7, 9)


def _passage(**fields) -> AnswerPassage:
    return AnswerPassage(
        id="a.txt:10",
        rank=1,
        score=2.0,
        text="The repairs cost 12 million euros.",
        answer=AnswerSpan("12 million euros", 17, 33),
        highlights=[],
        citation=CITED,
        **fields,
    )


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (
            Answers("How much?", True, 1.0, [_passage()]),
            "1. 12 million euros\n"
            "   | The repairs cost 12 million euros.\n"
            "   — Harbour Wall (a.txt, characters 10–60, line 3)",
        ),
        (
            Answers("How much?", True, 1.0, [_passage(corroborated_by=[OTHER])]),
            "1. 12 million euros\n"
            "   | The repairs cost 12 million euros.\n"
            "   — Harbour Wall (a.txt, characters 10–60, line 3)\n"
            "   also reported by Port Authority Report (b.txt, characters 200–280, lines 7–9)",
        ),
        (
            Answers("How much?", True, 1.0, [_passage(conflicts=[
                Conflict("amount", "12 million euros", "15 million euros", OTHER)])]),
            "1. 12 million euros\n"
            "   | The repairs cost 12 million euros.\n"
            "   — Harbour Wall (a.txt, characters 10–60, line 3)\n"
            "   conflicting amount: “12 million euros” here, “15 million euros” in"
            " Port Authority Report (b.txt, characters 200–280, lines 7–9)",
        ),
        (
            Answers("How mcuh?", False, 1.0, [_passage()], did_you_mean="How much?"),
            "Did you mean: How much?\n\n"
            "The articles hold no answer; closest passages:\n\n"
            "1. 12 million euros\n"
            "   | The repairs cost 12 million euros.\n"
            "   — Harbour Wall (a.txt, characters 10–60, line 3)",
        ),
        (
            Answers("zzyzx qwv", False, 1.0, [], did_you_mean="zebra quay"),
            "Did you mean: zebra quay\n\nNo passage matches this question.",
        ),
        (Answers("zzyzx", False, 1.0, []), "No passage matches this question."),
        (
            Answers("How much?", True, 1.0, [_passage(
                context_before=AnswerSpan("The council met on Monday.", 0, 26))]),
            "1. 12 million euros\n"
            "   : The council met on Monday.\n"
            "   | The repairs cost 12 million euros.\n"
            "   — Harbour Wall (a.txt, characters 10–60, line 3)",
        ),
    ],
    ids=[
        "plain", "corroborated", "conflict", "respelt-unanswerable", "respelt-nothing", "nothing",
        "context",
    ],
)  # fmt: skip
def test_plain_text_shows_every_part_of_an_answer(answers, expected):
    assert click.unstyle(format_answers(answers)) == expected


def test_the_context_before_a_passage_is_dimmed():
    context = AnswerSpan("The council met on Monday.", 0, 26)
    shown = format_answers(Answers("How much?", True, 1.0, [_passage(context_before=context)]))
    assert click.style("   : The council met on Monday.", dim=True) in shown


def test_eval_works_from_another_folder(
    tmp_path, monkeypatch, seeds_dir, seed_texts, index_dir, questions_path
):
    monkeypatch.chdir(tmp_path)
    result = _invoke("eval", "--seeds", str(seeds_dir), "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    generation = open_generation(index_dir)
    expected = evaluate(
        lambda question, k: ask(generation, question, k=k),
        load_questions(questions_path),
        seed_texts,
    )
    # Timings differ from run to run; every other figure must not.
    del report["median_latency_ms"], expected["median_latency_ms"]
    # The held-out set, found beside the package rather than in the working folder.
    assert report == expected
    assert report["questions"] == len(load_questions(questions_path))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--index", "{index}"], "corpus folder not found: seeds: pass the articles the "
         "questions are about with --seeds DIR (or QA_SEEDS)"),
        (["--seeds", "{seeds}"], "no index at {here}/index: run `qa-service index --index "
         "{here}/index`"),
        (["--seeds", "{seeds}", "--url", "{unreachable}"], "POST {unreachable}/api/v1/ask: "),
    ],
    ids=["no-articles-here", "no-index-here", "unreachable-service"],
)  # fmt: skip
def test_eval_elsewhere_says_what_is_missing(
    tmp_path, monkeypatch, seeds_dir, index_dir, arguments, message
):
    monkeypatch.chdir(tmp_path)
    where = {
        "index": index_dir,
        "seeds": seeds_dir,
        "unreachable": f"http://127.0.0.1:{free_port()}",
        "here": tmp_path,
    }
    result = _invoke("eval", *(argument.format(**where) for argument in arguments))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {message.format(**where)}")
    assert "Traceback" not in result.output


def test_eval_names_the_line_of_a_malformed_question(tmp_path, seeds_dir, index_dir):
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"id": "q1", "question": "Who?", "answers": []}\n{"id": "q2"}\n')
    result = _invoke(
        "eval", "--questions", str(questions), "--seeds", str(seeds_dir), "--index", str(index_dir)
    )
    assert result.exit_code == 2
    assert "line 2 is not an object with the fields answers, id, question" in result.stderr


def test_ask_reports_an_unreachable_service(index_dir):
    url = f"http://127.0.0.1:{free_port()}"
    result = _invoke("ask", "Which court?", "--url", url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: POST {url}/api/v1/ask: ")
    assert "--url or QA_URL" in result.stderr


def test_keys_come_from_the_file_qa_api_keys_file_names(tmp_path):
    keys_file = tmp_path / "keys.json"
    environment = {"QA_API_KEYS_FILE": str(keys_file)}
    added = _invoke("keys", "add", "reader", env=environment)
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("qa_") and added.stdout.count("\n") == 1
    assert added.stdout.strip() not in keys_file.read_text()
    listed = _invoke("keys", "list", env=environment)
    assert listed.stdout == "reader\tread\n"


def test_a_damaged_keys_file_is_an_error_not_a_traceback(tmp_path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text("{not json")
    result = _invoke("keys", "list", "--file", str(keys_file))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output

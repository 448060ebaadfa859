"""The evaluation scorer on small hand-made cases whose figures are worked out by hand."""

from __future__ import annotations

import pytest

from qa_service.core.results import AnswerPassage, Answers, AnswerSpan, Citation
from qa_service.retrieval.evaluation import (
    evaluate,
    load_questions,
    matches_gold,
    score,
    token_f1,
)

GOLD = {"source": "a.txt", "start": 100, "end": 200, "text": "unused"}


@pytest.mark.parametrize(
    ("source", "start", "end", "match", "expected"),
    [
        ("a.txt", 150, 260, "cover", True),  # covers 50 of the gold's 100 characters
        ("a.txt", 151, 260, "cover", False),  # covers 49
        ("a.txt", 0, 1000, "cover", True),  # covers all of it
        ("b.txt", 100, 200, "cover", False),  # the same span of another source
        ("a.txt", 200, 300, "cover", False),  # touches it only
        ("a.txt", 50, 150, "within", True),  # 50 of the passage's 100 characters inside
        ("a.txt", 49, 150, "within", False),  # 51 of its 101 inside: 50.5 needed
        ("a.txt", 0, 1000, "within", False),  # covers the gold, but mostly lies outside
        ("a.txt", 120, 130, "within", True),  # wholly inside
    ],
    ids=[
        "cover-half", "cover-under-half", "cover-all", "cover-other-source", "cover-touching",
        "within-half", "within-under-half", "within-too-long", "within-inside",
    ],
)  # fmt: skip
def test_a_span_matches_the_gold_by_its_rule(source, start, end, match, expected):
    assert matches_gold(source, start, end, GOLD, match) is expected


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("the cat sat", "cat sat down", 2 / 3),  # 2 common: precision 2/3, recall 2/3
        ("Cat, SAT!", "cat sat", 1.0),  # case and punctuation do not count
        ("cat cat", "cat", 2 / 3),  # precision 1/2, recall 1: F1 2/3
        ("dog", "cat", 0.0),
        ("", "cat", 0.0),
    ],
    ids=["partial", "normalised", "repeated", "disjoint", "empty"],
)
def test_token_f1(predicted, gold, expected):
    assert token_f1(predicted, gold) == pytest.approx(expected)


TEXTS = {"a.txt": "".join(chr(ord("a") + i % 26) for i in range(300)), "b.txt": "b" * 300}


def _passage(rank: int, source: str, start: int, end: int, answer: str = "", text=None):
    """A passage citing [start, end) of `source`; its text is the cited one unless given."""
    cited = TEXTS[source][start:end] if text is None else text
    citation = Citation(source, source, start, end, start, end, 1, 1)
    return AnswerPassage(
        id=f"{source}:{start}",
        rank=rank,
        score=1.0,
        text=cited,
        answer=AnswerSpan(answer or cited, 0, len(answer or cited)),
        highlights=[],
        citation=citation,
    )


def _answers(*passages: AnswerPassage, answerable: bool = True) -> Answers:
    return Answers("", answerable, 1.0, list(passages))


QUESTIONS = [
    # Found at rank 2, in its only source.
    {"id": "q1", "question": "one", "answers": [
        {"source": "a.txt", "start": 10, "end": 20, "text": "red fox"}]},
    # Found at rank 1 in one of its two sources; the service refused it all the same.
    {"id": "q2", "question": "two", "answers": [
        {"source": "a.txt", "start": 30, "end": 40, "text": "blue whale"},
        {"source": "b.txt", "start": 0, "end": 10, "text": "green frog"}]},
    # Not found at all.
    {"id": "q3", "question": "three", "answers": [
        {"source": "b.txt", "start": 200, "end": 210, "text": "grey owl"}]},
    # Unanswerable, and refused.
    {"id": "q4", "question": "four", "answers": []},
]  # fmt: skip
RESULTS = {
    "q1": _answers(
        _passage(1, "b.txt", 0, 50, answer="the red deer"),
        _passage(2, "a.txt", 5, 25),
    ),
    "q2": _answers(_passage(1, "a.txt", 30, 40, answer="blue whale"), answerable=False),
    # The second passage's text is not what its citation points at.
    "q3": _answers(_passage(1, "a.txt", 0, 100), _passage(2, "b.txt", 0, 10, text="wrong")),
    "q4": _answers(_passage(1, "a.txt", 100, 140), answerable=False),
}


def test_the_metrics_of_a_hand_made_run():
    report = score(QUESTIONS, RESULTS, TEXTS, k=5)
    assert report == {
        "questions": 4,
        # Three answerable questions: ranks 2, 1 and none.
        "hit@1": round(1 / 3, 3),
        "hit@3": round(2 / 3, 3),
        "mrr@5": round((1 / 2 + 1) / 3, 3),
        # q1 1 of 1 source, q2 1 of 2, q3 0 of 1.
        "source_recall@5": round((1 + 1 / 2 + 0) / 3, 3),
        # The first passage's answer: q1 "the red deer" vs "red fox" (1 of 3 and 1 of 2
        # words: F1 0.4), q2 1.0, q3 nothing in common.
        "answer_f1@1": round((0.4 + 1.0 + 0.0) / 3, 3),
        "abstain_acc": 1.0,
        "false_abstain": 1,
        "bad_citations": 1,
        # Passage lengths 50, 20, 10, 100, 10, 40.
        "median_passage_chars": 30.0,
        "max_passage_chars": 100,
        "missed": ["q3"],
    }


def test_only_the_first_k_passages_count():
    report = score(QUESTIONS, RESULTS, TEXTS, k=1)
    assert report["hit@3"] == round(1 / 3, 3)  # q1's gold was at rank 2
    assert report["mrr@1"] == round(1 / 3, 3)
    assert report["missed"] == ["q1", "q3"]
    assert report["bad_citations"] == 0  # q3's bad citation was second
    assert report["max_passage_chars"] == 100


def test_an_unanswerable_question_answered_counts_against_abstention():
    answered = {**RESULTS, "q4": _answers(_passage(1, "a.txt", 100, 140))}
    assert score(QUESTIONS, answered, TEXTS)["abstain_acc"] == 0.0
    # Refusing with no passages at all is abstaining too.
    empty = {**RESULTS, "q4": _answers()}
    assert score(QUESTIONS, empty, TEXTS)["abstain_acc"] == 1.0


def test_evaluate_asks_every_question_with_k_and_scores_the_answers():
    asked = []

    def ask(question: str, k: int) -> Answers:
        asked.append((question, k))
        return RESULTS[f"q{['one', 'two', 'three', 'four'].index(question) + 1}"]

    report = evaluate(ask, QUESTIONS, TEXTS, k=3)
    assert asked == [("one", 3), ("two", 3), ("three", 3), ("four", 3)]
    latency = report.pop("median_latency_ms")
    assert latency >= 0
    assert report == score(QUESTIONS, RESULTS, TEXTS, k=3)


def test_questions_are_read_from_json_lines_skipping_blank_ones(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text('{"id": "q1", "question": "one", "answers": []}\n\n', encoding="utf-8")
    assert load_questions(path) == [{"id": "q1", "question": "one", "answers": []}]


NOT_A_QUESTION = "line 2 is not an object with the fields answers, id, question"


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ("{not json", "line 2 is not JSON"),
        ('{"id": "q2", "question": "two"}', NOT_A_QUESTION),
        ('["q2", "two", []]', NOT_A_QUESTION),
    ],
    ids=["not-json", "no-answers", "not-an-object"],
)
def test_a_malformed_question_names_its_line(tmp_path, second_line, message):
    path = tmp_path / "questions.jsonl"
    path.write_text(f'{{"id": "q1", "question": "one", "answers": []}}\n{second_line}\n')
    with pytest.raises(ValueError, match=message):
        load_questions(path)

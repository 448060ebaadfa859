"""The reader's training data: written sets that quote their articles exactly, kept apart
from every corpus and question set the service is evaluated on."""

from __future__ import annotations

import json
import random

import pytest
from support import ROOT

from qa_service.model import reader_data

WRITTEN = sorted(p for p in reader_data.WRITTEN.iterdir() if (p / "questions.jsonl").is_file())
KINDS = set(
    "who when quantity where why what definition yesno attribution paraphrase typo keyword"
    " multi negation unanswerable".split()
)


def _questions(folder):
    lines = (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("folder", WRITTEN, ids=lambda folder: folder.name)
def test_a_written_set_quotes_its_articles_exactly(folder):
    questions = _questions(folder)
    assert len(questions) >= 100 and (folder / "SOURCE.md").is_file()
    assert len({q["id"] for q in questions}) == len(questions)
    for question in questions:
        assert question["kind"] in KINDS
        assert (question["kind"] == "unanswerable") == (not question["answers"])
        for answer in question["answers"]:
            text = (folder / "articles" / answer["source"]).read_text(encoding="utf-8")
            assert text[answer["start"] : answer["end"]] == answer["text"]
    unanswerable = sum(not q["answers"] for q in questions) / len(questions)
    assert 0.1 <= unanswerable <= 0.2


def test_no_training_text_comes_from_what_the_service_is_evaluated_on():
    evaluated = [
        json.loads(line)["question"].lower()
        for path in (ROOT / "tests" / "data").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    seeds = [path.read_text(encoding="utf-8") for path in (ROOT / "seeds").glob("*.txt")]
    for folder in WRITTEN:
        asked = {q["question"].lower() for q in _questions(folder)}
        assert not asked & set(evaluated)
        for article in (folder / "articles").glob("*.txt"):
            text = article.read_text(encoding="utf-8")
            assert not any(text[:200] in seed or seed[:200] in text for seed in seeds)


def test_the_ranker_s_candidates_are_labelled_by_the_gold_spans():
    folder = WRITTEN[0]
    pairs = list(reader_data.written_pairs(folder.parent, only=folder.name))
    answerable = {q["question"] for q in _questions(folder) if q["answers"]}
    positives = [p for p in pairs if p["label"]]
    assert positives and {p["question"] for p in positives} <= answerable
    unanswerable = {q["question"] for q in _questions(folder) if not q["answers"]}
    assert not [p for p in positives if p["question"] in unanswerable]
    sample = random.Random(0).sample(positives, 10)
    by_question = {q["question"]: q for q in _questions(folder)}
    for pair in sample:
        golds = [a["text"] for a in by_question[pair["question"]]["answers"]]
        # A positive passage holds at least half of a gold span's words.
        assert any(
            sum(word in pair["passage"] for word in gold.split()) >= len(gold.split()) / 2
            for gold in golds
        )

"""Question types and answer entities: the pure parts of the second stage."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qa_service.retrieval.ranking import AnswerType, answer_entities, expected_answer_type


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much money do the plaintiffs want?", AnswerType.QUANTITY),
        ("What share of staff feel close to burnout?", AnswerType.QUANTITY),
        ("When was the setting introduced?", AnswerType.TIME),
        ("How long has he been a subscriber?", AnswerType.TIME),
        ("Who is the named plaintiff?", AnswerType.NAME),
        ("Which court is the case filed in?", AnswerType.NAME),
        ("Why are the claims serious?", AnswerType.ANY),
    ],
)
def test_expected_answer_type(question, kind):
    assert expected_answer_type(question) is kind


def entities(text: str, kind: AnswerType, question_spans=()) -> list[str]:
    return [text[s:e] for s, e in answer_entities(text, 0, kind, question_spans)]


def test_quantities_are_amounts_and_counts_not_labels_or_years():
    text = (
        "On September 18, 2023, it had 175 million users, paid $26.2 billion under 18 U.S.C. 2707."
    )
    assert entities(text, AnswerType.QUANTITY) == ["175 million", "$26.2 billion"]


def test_names_skip_sentence_starts_and_the_questions_own_words():
    text = "Filed on behalf of Alessandro De La Torre. LinkedIn denied it."
    question_spans = [(text.index("LinkedIn"), text.index("LinkedIn") + 8)]
    assert entities(text, AnswerType.NAME, question_spans) == ["Alessandro De La Torre"]


def test_times_are_dates_years_and_durations():
    text = "A subscriber since July 2021, for 3 years, until May."
    assert entities(text, AnswerType.TIME) == ["since", "July 2021", "3 years", "May"]


def test_coverage_is_the_same_in_every_process():
    # Summed in a set's order, 0.1 + 0.2 + 0.3 gives 0.6 or 0.6000000000000001 as string
    # hashes (a process's PYTHONHASHSEED) order the set: enough to swap tied candidates.
    script = (
        "from qa_service.retrieval.ranking import coverage;"
        "print(repr(coverage({'alpha', 'beta', 'gamma'}, "
        "{'alpha': 0.1, 'beta': 0.2, 'gamma': 0.3, 'delta': 0.4})))"
    )
    results = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(12)
    }
    assert len(results) == 1, results

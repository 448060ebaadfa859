"""General answering behaviours, on a small corpus written for them (not the seeds).

Each test is one failure class: paraphrase, who-questions, attribution, the
subject of a question, definitions, and "no answer".
"""

from __future__ import annotations

import pytest
from support import index_of

from qa_service.retrieval.search import ask

ARTICLES = {
    "lawsuit.txt": """Acme Corp faces privacy lawsuit over customer emails

A former customer, Jane Doe, filed a lawsuit against Acme Corp in federal court in Denver on Monday.

The complaint alleges that Acme shared the contents of private customer emails with
advertising partners without consent.

Acme said in a statement that the claims were without merit and that it would fight them in court.

The complaint said the company had hidden the change in a long update to its terms of service.
""",
    "other-case.txt": """Court throws out claims against Globex

In a separate case last year, a federal judge dismissed the claims against Globex Inc,
a shipping firm, finding no evidence of harm.

Globex had been accused of selling delivery records to data brokers.
""",
    "glossary.txt": """What the filings mean

Widgets are sold in many hardware shops across the country.

A widget is a small mechanical device used to fasten two panels together.

Prices of widgets rose sharply during the last two years.
""",
}


@pytest.fixture(scope="module")
def generation(tmp_path_factory):
    return index_of(ARTICLES, tmp_path_factory.mktemp("corpus"))


def top(generation, question):
    answers = ask(generation, question, k=3)
    assert answers.passages, question
    return answers, answers.passages[0]


@pytest.mark.parametrize(
    "question", ["Who sued Acme?", "Who brought the case against Acme?", "Who is suing Acme?"]
)
def test_a_who_question_in_other_words_is_answered_with_a_name(generation, question):
    answers, first = top(generation, question)
    assert answers.answerable
    assert "Jane Doe" in first.answer.text


def test_what_a_party_said_is_answered_by_its_own_statement(generation):
    _, first = top(generation, "What did Acme say in response?")
    assert "Acme said" in first.text


def test_a_passage_about_another_party_is_not_the_answer(generation):
    _, first = top(generation, "Was the lawsuit against Acme dismissed?")
    assert "Globex" not in first.text


def test_a_definition_question_gets_the_defining_sentence(generation):
    _, first = top(generation, "What is a widget?")
    assert first.answer.text.startswith("A widget is")


@pytest.mark.parametrize(
    "question", ["Who won the 2018 FIFA World Cup?", "What's a good recipe for banana bread?"]
)
def test_a_question_the_articles_do_not_touch_is_refused(generation, question):
    assert not ask(generation, question).answerable


@pytest.mark.parametrize(
    "question",
    ["What is Acme accused of doing with emails?", "Where was the complaint against Acme filed?"],
)
def test_a_question_the_articles_answer_is_not_refused(generation, question):
    assert ask(generation, question).answerable

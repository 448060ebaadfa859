"""Asking the index directly: terms, ranking, answer spans and highlights."""

from __future__ import annotations

import pytest

from qa_service.index import open_generation
from qa_service.retrieval.analysis import ANALYZER, query_terms
from qa_service.retrieval.search import ask


@pytest.fixture(scope="module")
def generation(index_dir):
    return open_generation(index_dir)


def test_query_terms_drop_question_words_lemmatise_and_stem():
    # "sought" -> "seek": the dictionary form first, so it meets "seeks" in the articles.
    assert query_terms("What damages are sought?") == ["damag", "seek"]
    assert query_terms("How much is $1,000 worth?") == ["1000", "worth"]


def test_query_syntax_is_plain_words():
    assert query_terms('title:damages AND (NOT "court*') == ["titl", "damag", "court"]
    assert query_terms("\x00\x07 \x1b") == []


def test_damages_question_cites_the_stored_communications_act(generation):
    answers = ask(generation, "What damages are sought?")
    assert answers.answerable
    top = answers.passages[0]
    assert "$1,000" in top.text and "Stored Communications Act" in top.text
    assert [p.rank for p in answers.passages] == list(range(1, len(answers.passages) + 1))
    assert [p.score for p in answers.passages] == sorted(
        (p.score for p in answers.passages), reverse=True
    )


def test_answers_and_highlights_lie_inside_their_passage(generation, seed_texts):
    for question in ["Which court is the case filed in?", "What did the MIT study find?"]:
        passages = ask(generation, question, k=5).passages
        assert passages[0].highlights
        for passage in passages:
            citation = passage.citation
            source = seed_texts[citation.source]
            answer = passage.answer
            assert citation.start <= answer.start < answer.end <= citation.end
            assert source[answer.start : answer.end] == answer.text
            for span in passage.highlights:
                assert citation.start <= span.start < span.end <= citation.end
                (term,) = [token.text for token in ANALYZER(source[span.start : span.end])]
                assert term in query_terms(question)


def test_sources_filter_limits_the_passages(generation):
    name = "004_5b17a04d0d39d0bc.txt"
    answers = ask(generation, "Where was the lawsuit filed?", k=10, sources=[name])
    assert answers.passages
    assert {p.citation.source for p in answers.passages} == {name}


def test_a_question_of_only_stop_words_is_not_answerable(generation):
    answers = ask(generation, "What is it?")
    assert not answers.answerable and answers.passages == []


def test_k_limits_the_number_of_passages(generation):
    assert len(ask(generation, "LinkedIn lawsuit", k=2).passages) == 2


def test_answer_spans_keep_numbers_whole(generation):
    for passage in ask(generation, "What damages are sought?").passages:
        text = passage.answer.text
        assert not text.endswith(("$1", "$1,")), text
        assert "$1,000" in text or "$1000" in text or "$" not in text


def test_clauses_split_at_punctuation_but_not_inside_numbers_lists_brackets_or_quotes():
    from qa_service.retrieval.ranking import clause_spans

    text = (
        "Update: It asks $1,000 per user, which is a lot; Amazon, Google, and Meta "
        "(if any, and soon) follow, saying “no, never, not us” today."
    )
    assert [text[s:e] for s, e in clause_spans(text, 0, len(text))] == [
        "It asks $1,000 per user",
        "which is a lot",
        "Amazon, Google, and Meta (if any, and soon) follow",
        "saying “no, never, not us” today.",
    ]


def test_did_you_mean_respells_unknown_words_only(generation):
    assert ask(generation, "What damgaes are sought?").did_you_mean == "What damages are sought?"
    assert ask(generation, "privcy setting introducd").did_you_mean == "privacy setting introduced"
    assert ask(generation, "What damages are sought?").did_you_mean is None
    # Short words (names, acronyms) are not "corrected" into other words.
    assert ask(generation, "Who is the CEO of LinkedIn?").did_you_mean is None

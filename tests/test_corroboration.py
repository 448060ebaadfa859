"""Passages in other sources that state the same fact, copies, and conflicting values."""

from __future__ import annotations

import pytest

from qa_service.core.corroboration import (
    COMPARABLE,
    MAX_LINKS,
    conflicting_values,
    near_copy,
    values_in,
)
from qa_service.index import open_generation
from qa_service.retrieval.search import ask


@pytest.fixture(scope="module")
def generation(index_dir):
    return open_generation(index_dir)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("on September 18, 2023, it changed", [("date", (9, 18, 2023))]),
        (
            "in August of 2024 and in Sept. 2024",
            [("date", (8, None, 2024)), ("date", (9, None, 2024))],
        ),
        ("you may see it", []),
        ("in May 2024", [("date", (5, None, 2024))]),
        ("$1,000 per user, $1000 per plaintiff", [("amount", (1000.0,)), ("amount", (1000.0,))]),
        ("about $26.2 billion", [("amount", (26.2e9,))]),
    ],
    ids=["full-date", "month-year", "may-verb", "may-month", "amounts", "billions"],
)
def test_values_in(text, values):
    assert [(value.kind, value.parts) for value in values_in(text)] == values


def test_dates_conflict_on_year_not_on_missing_parts():
    pairs = conflicting_values(
        "updated on September 18, 2023", "changed in September 2024", amounts=True
    )
    assert [(a.text, b.text) for a, b in pairs] == [("September 18, 2023", "September 2024")]
    assert conflicting_values("on September 18, 2023", "on September 18", amounts=True) == []
    assert conflicting_values("in August 2024", "in September 2023", amounts=True) == []


def test_amounts_conflict_only_when_asked_and_disjoint():
    assert conflicting_values("seeks $1,000 each", "seeks $1000 each", amounts=True) == []
    pairs = conflicting_values("seeks $1,000 each", "seeks $5,000 each", amounts=True)
    assert [(a.text, b.text) for a, b in pairs] == [("$1,000", "$5,000")]
    assert conflicting_values("seeks $1,000 each", "seeks $5,000 each", amounts=False) == []


def test_near_copy_is_about_shared_words():
    quote = (
        "This behavior suggests that LinkedIn was fully aware that it had violated its promises."
    )
    assert near_copy(
        quote,
        "“This behaviour suggests that LinkedIn was fully aware that it had violated its"
        " promises,” it said.",
    )
    assert not near_copy(
        quote, "The company maintains that the claims are false and without merit."
    )


def test_links_cross_sources_closest_first_and_bounded(generation):
    passages = generation.passages(range(generation.info.passage_count))
    for number, links in enumerate(generation.links):
        assert len(links) <= MAX_LINKS
        similarities = [link.similarity for link in links]
        assert similarities == sorted(similarities, reverse=True)
        for link in links:
            assert passages[link.other].source != passages[number].source
            assert link.similarity >= COMPARABLE


def test_the_policy_date_conflict_between_sources(generation):
    answers = ask(generation, "When did LinkedIn update its privacy policy?")
    passage = next(p for p in answers.passages if "September 18, 2023" in p.text)
    assert passage.citation.source == "001_d2a1e9c52261be42.txt"
    (conflict,) = passage.conflicts
    assert (conflict.kind, conflict.value, conflict.other_value) == (
        "date",
        "September 18, 2023",
        "September 2024",
    )
    assert conflict.citation.source == "003_1650bec134086eef.txt"
    assert (
        "September 2024"
        in generation.sources[conflict.citation.source].text[
            conflict.citation.start : conflict.citation.end
        ]
    )


def test_corroborating_passages_come_from_other_sources(generation):
    answers = ask(generation, "What damages are sought?")
    top = answers.passages[0]
    others = {citation.source for citation in top.corroborated_by}
    assert others and top.citation.source not in others
    texts = [generation.sources[c.source].text[c.start : c.end] for c in top.corroborated_by]
    assert any("Stored Communications Act" in text for text in texts)


@pytest.mark.parametrize(
    "question",
    ["What damages are sought?", "When did LinkedIn change its privacy settings?",
     "Who filed the lawsuit?", "Which court is the case filed in?"],
)  # fmt: skip
def test_each_other_source_corroborates_once(generation, question):
    for passage in ask(generation, question).passages:
        sources = [citation.source for citation in passage.corroborated_by]
        assert len(sources) == len(set(sources))


def test_copies_are_folded_into_the_better_passage(generation):
    question = "Was LinkedIn fully aware that it violated its contractual promises?"
    answers = ask(generation, question, k=10)
    quoted = [p for p in answers.passages if "fully aware that it had violated" in p.text]
    assert len(quoted) == 1
    sources = {c.source for c in quoted[0].corroborated_by}
    copy_source = (
        {"002_a33ee39ce9b31964.txt", "004_5b17a04d0d39d0bc.txt"} - {quoted[0].citation.source}
    ).pop()
    assert copy_source in sources

"""Did-you-mean suggestions: only real misspellings, respelt as the closest article word."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import index_of

from qa_service.retrieval import spelling
from qa_service.retrieval.analysis import WORD
from qa_service.retrieval.spelling import correction, respell, same_word

# Each real English word below sits one or two edits from a word these articles use.
ARTICLES = {
    "court.txt": "The lawsuit was filed in a federal court of the state. "
    "The plaintiffs seek damages and ask whether the company would pay.\n",
    "reply.txt": "The company's response came a week later. It said the messages "
    "were private and that it had a contact for every question.\n",
    "product.txt": "The Zorblax recorder is sold by the company. Each Zorblax "
    "keeps its charging cable in the box.\n",
}


@pytest.fixture(scope="module")
def generation(tmp_path_factory):
    return index_of(ARTICLES, tmp_path_factory.mktemp("corpus"))


@pytest.fixture()
def lookups(generation, monkeypatch):
    """The words the corrector is asked about, recorded while still answering."""
    asked = []
    words_like = generation.words_like

    def recording(word):
        asked.append(word)
        return words_like(word)

    monkeypatch.setattr(generation, "words_like", recording)
    return asked


@pytest.mark.parametrize(
    "question, word, lure",
    [
        ("What about the weather?", "weather", "whether"),
        ("Which statute applies?", "statute", "state"),
        ("Who won the World Cup?", "world", "would"),
        ("Do the files contain messages?", "contain", "contact"),
        ("Is the policy changing?", "changing", "charging"),
    ],
    ids=["weather", "statute", "capitalised-World", "contain", "changing"],
)
def test_real_english_words_the_articles_lack_are_not_respelt(generation, question, word, lure):
    # The premise: the corrector alone would have "fixed" the word into the lure.
    assert correction(generation, word) == lure
    assert respell(generation, question) is None


def test_another_form_of_a_word_the_articles_use_is_not_respelt(generation):
    assert respell(generation, "How did the company respond?") is None
    # Not in any English list, so only the stem comparison stops it.
    assert correction(generation, "zorblaxes") == "zorblax"
    assert respell(generation, "Are Zorblaxes sold?") is None


@pytest.mark.parametrize(
    "word, other, same",
    [
        ("contain", "contained", True),
        ("responded", "respond", True),
        ("zorblaxes", "zorblax", True),
        ("sought", "seeks", True),
        ("lawsiut", "lawsuit", False),
        ("weather", "whether", False),
    ],
    ids=["past", "past-reversed", "plural", "irregular", "typo", "homophone"],
)
def test_same_word_compares_stems_and_lemmas(word, other, same):
    assert same_word(word, other) is same


def test_a_misspelling_is_respelt_and_nothing_else_changes(generation):
    assert respell(generation, "Where was the lawsiut filed?") == "Where was the lawsuit filed?"
    assert respell(generation, "Lawsiut  filed,  damgaes?!") == "Lawsuit  filed,  damages?!"
    assert respell(generation, "WHO PAYS DAMGAES?") == "WHO PAYS DAMAGES?"


def test_short_words_are_left_alone(generation):
    # Names and acronyms: "stae" is one edit from "state".
    assert respell(generation, "Is stae the CEO?") is None


def test_a_very_long_made_up_word_is_not_looked_up(generation, lookups):
    long_word = "lawsiut" + "x" * 500
    assert respell(generation, f"Was the {long_word} filed?") is None
    assert lookups == []


def test_more_unknown_words_than_the_cap_are_not_looked_up(generation, lookups):
    made_up = ["qwzrtplkjh", "xvbnmqwrtz", "plkqzjxvwr", "zzqxvbwtrp"][: spelling.MAX_UNKNOWN_WORDS]
    question = " ".join(["lawsiut", *made_up])
    assert len(made_up) + 1 > spelling.MAX_UNKNOWN_WORDS
    assert respell(generation, question) is None
    assert lookups == []
    # Within the cap the same misspelling is respelt.
    assert respell(generation, " ".join(["lawsiut", *made_up[1:]])).startswith("lawsuit ")


def test_a_respelt_question_needs_no_second_respelling(generation):
    respelt = respell(generation, "lawsiut damgaes")
    assert respelt == "lawsuit damages"
    assert respell(generation, respelt) is None


# No deadline: the first call in a process may load wordfreq's English list.
@settings(deadline=None)
@given(st.text(alphabet="lawsuitdmgepr .,?-'", max_size=60))
def test_only_words_change(generation, question):
    respelt = respell(generation, question)
    if respelt is not None:
        assert respelt != question
        # The same separators between the same number of words.
        assert WORD.split(respelt) == WORD.split(question)

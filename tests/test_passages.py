"""Passages: whole sentences, exact offsets, no boilerplate."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from qa_service.passages import (
    MAX_PASSAGE_CHARS,
    MAX_PASSAGE_SENTENCES,
    is_prose_line,
    split_passages,
    split_sentences,
)

BOILERPLATE = [
    "Share",
    "Menu",
    "Subscribe to our newsletter for updates",
    "Instagram logo",
    "Featured Posts",
    "Related Posts",
    '"*" indicates required fields',
]
FOOTNOTES = ["1", "2", "12", ".", "😀"]


def assert_exact(text: str, passage) -> None:
    """Every offset of a passage reproduces it from the source text."""
    assert text[passage.start : passage.end] == passage.text
    assert passage.byte_start == len(text[: passage.start].encode("utf-8"))
    assert passage.byte_end == len(text[: passage.end].encode("utf-8"))
    raw = text.encode("utf-8")[passage.byte_start : passage.byte_end]
    assert raw.decode("utf-8") == passage.text
    assert passage.line_start == text.count("\n", 0, passage.start) + 1
    assert passage.line_end == text.count("\n", 0, passage.end - 1) + 1
    for start, end in passage.sentences:
        assert passage.start <= start < end <= passage.end


def test_seed_passages_are_exact_and_sized(seed_texts):
    for name, text in seed_texts.items():
        passages = split_passages(text, name)
        assert passages, name
        for passage in passages:
            assert_exact(text, passage)
            assert 1 <= len(passage.sentences) <= MAX_PASSAGE_SENTENCES
            assert len(passage.text) <= MAX_PASSAGE_CHARS or len(passage.sentences) == 1
            assert passage.id == f"{name}:{passage.start}-{passage.end}"


def test_seed_boilerplate_and_footnotes_never_become_passages(seed_texts):
    for name, text in seed_texts.items():
        for passage in split_passages(text, name):
            lines = {line.strip() for line in passage.text.splitlines()}
            assert not lines & set(BOILERPLATE), passage.text
            assert re.search(r"[^\W\d_]", passage.text), passage.text
            # A lone footnote number line never sits inside a passage.
            assert not any(re.fullmatch(r"\d+|\.", line) for line in lines), passage.text


def test_footnote_lines_inside_a_sentence_do_not_shift_offsets(seed_texts):
    name = "001_d2a1e9c52261be42.txt"
    text = seed_texts[name]
    passages = split_passages(text, name)
    sentence = "The lawsuit seeks damages of $1,000 per plaintiff"
    (passage,) = [p for p in passages if sentence in p.text]
    assert passage.text.startswith(sentence)
    assert text.index(sentence) == passage.start


def test_offsets_after_an_emoji_outside_the_bmp_count_code_points():
    text = "Intro 😀 sentence here is fine.\nSecond line of prose is here too.\n"
    first, second = split_passages(text, "x.txt")
    assert second.start == text.index("Second")
    assert second.byte_start == second.start + 3  # the emoji is 4 bytes, 1 code point
    assert first.text == "Intro 😀 sentence here is fine."


def test_sentences_respect_abbreviations_and_initials():
    text = "The U.S. District Court in N.D. Cal. heard it. Dr. Smith said no. It ended."
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == [
        "The U.S. District Court in N.D. Cal. heard it.",
        "Dr. Smith said no.",
        "It ended.",
    ]


def test_long_sentence_stays_whole_and_groups_stay_under_the_limit():
    long_sentence = "Word " * 150 + "end."
    short = "A short sentence follows here."
    text = f"{long_sentence} {short} {short[:-1]} again. {short[:-1]} thrice."
    passages = split_passages(text, "x.txt")
    assert passages[0].text == long_sentence
    assert all(len(p.text) <= MAX_PASSAGE_CHARS for p in passages[1:])


def test_a_line_ending_in_a_colon_keeps_its_quotation():
    text = "In response, the company said:\u00a0\n\nThese are false claims with no merit.\n"
    (passage,) = split_passages(text, "x.txt")
    assert passage.text.endswith("no merit.")
    assert passage.start == 0


def test_headings_and_boilerplate_are_not_prose():
    assert not is_prose_line("Impact on Premium Users and Damages Sought")
    assert not is_prose_line("Subscribe to our newsletter for updates")
    assert not is_prose_line("18 Sources")
    assert is_prose_line("The lawsuit could be worth over a billion dollars")


def test_wrapped_lines_join_into_one_sentence():
    text = "The court heard the case on a\nrainy Monday in March. It adjourned.\n"
    (passage,) = split_passages(text, "x.txt")
    assert passage.sentences[0] == (0, text.index("March.") + len("March."))


# --- property: random articles with unicode, blank lines, boilerplate and footnotes

LETTERS = "abcdefghijklmnopqrstuvwxyzéüñßøжλ"
word = st.text(alphabet=LETTERS, min_size=2, max_size=9)
space = st.sampled_from([" ", " ", " ", "\u00a0", "  "])


@st.composite
def sentence(draw, number: int) -> str:
    words = draw(
        st.lists(st.one_of(word, st.sampled_from(["😀", "“quoted”", "it’s"])), max_size=12)
    )
    words = [f"S{number}x", *words]  # unique, upper-case start: a real sentence start
    joined = words[0]
    for item in words[1:]:
        joined += draw(space) + item
    return joined + draw(st.sampled_from([".", "!", "?", ".”"]))


@st.composite
def article(draw):
    """Text plus the (start, end) of every prose sentence placed in it."""
    text, sentences, number = "", [], 0
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["prose", "prose", "blank", "boilerplate", "footnote"]))
        newline = draw(st.sampled_from(["\n", "\n", "\r\n"]))
        if kind == "prose":
            text += draw(st.sampled_from(["", " ", "\u00a0"]))
            for index in range(draw(st.integers(1, 4))):
                if index:
                    text += draw(space)
                body = draw(sentence(number))
                number += 1
                sentences.append((len(text), len(text) + len(body)))
                text += body
            text += draw(st.sampled_from(["", " ", "\u00a0 "]))
        elif kind == "boilerplate":
            text += draw(st.sampled_from(BOILERPLATE))
        elif kind == "footnote":
            text += draw(st.sampled_from(FOOTNOTES))
        text += newline
    return text, sentences


@settings(max_examples=300, deadline=None)
@given(article())
def test_property_every_sentence_lands_in_exactly_cited_passages(generated):
    text, sentences = generated
    passages = split_passages(text, "random.txt")
    for passage in passages:
        assert_exact(text, passage)
        assert passage.text.strip() not in BOILERPLATE + FOOTNOTES
        assert len(passage.text) <= MAX_PASSAGE_CHARS or len(passage.sentences) == 1
    for before, after in zip(passages, passages[1:], strict=False):
        assert before.end <= after.start
    for start, end in sentences:
        assert any(p.start <= start and end <= p.end for p in passages), text[start:end]

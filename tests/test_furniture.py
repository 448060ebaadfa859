"""Site furniture: lines shared by articles that otherwise differ, never a copied article's."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from qa_service.core.furniture import _LineCache, furniture_lines, line_keys
from qa_service.core.passages import split_passages

FOOTER = "The City Desk is funded by its readers."
BYLINE = "By the City Desk staff"


def _story(number: int, lines: int = 6) -> str:
    """An article of short lines (each could be furniture by length), the footer last."""
    body = [
        f"Crew {number} finished section {line} of the harbour tunnel on day {line + number}."
        for line in range(lines)
    ]
    return "\n".join([f"Harbour tunnel report {number}", BYLINE, *body, FOOTER]) + "\n"


def _passages(text: str, boilerplate: frozenset[str]) -> list[str]:
    return [passage.text for passage in split_passages(text, "a.txt", boilerplate=boilerplate)]


def test_an_article_and_its_copy_keep_all_their_passages_and_furniture_goes():
    story, others = _story(1), [_story(number) for number in (2, 3, 4)]
    reprint = story + "Reprinted with permission.\n"  # a copy with a line of its own
    furniture = furniture_lines([story, story, reprint, *others])

    assert furniture == {FOOTER, BYLINE}
    kept = _passages(story, furniture)
    assert kept == [p for p in _passages(story, frozenset()) if p not in (FOOTER, BYLINE)]
    assert len(kept) == 7  # the title and six sentences
    assert _passages(reprint, furniture) == [*kept, "Reprinted with permission."]
    for other in others:
        assert FOOTER not in " ".join(_passages(other, furniture))


def test_lines_of_copies_alone_are_not_furniture_even_with_one_other_article():
    story = _story(1)
    # The other article shares the byline only: the byline is furniture, the story's
    # sentences (shared by the two copies alone) are not.
    other = f"Council vote\n{BYLINE}\nThe council voted to close the pier.\n"
    assert furniture_lines([story, story, other]) == {BYLINE}


def test_an_article_quoted_whole_in_a_longer_one_is_its_copy():
    short = "Pier closed\nThe council voted to close the pier.\nThe vote was 5 to 2.\n"
    longer = short + "".join(f"Residents spoke for {n} minutes at the meeting.\n" for n in range(9))
    assert furniture_lines([short, longer]) == frozenset()


def test_articles_sharing_a_few_lines_are_not_copies():
    first = f"Pier closed\n{BYLINE}\nThe council voted to close the pier.\n"
    second = f"Mill reopened\n{BYLINE}\nThe old mill reopened on Monday.\n"
    assert furniture_lines([first, second]) == {BYLINE}


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=6),
    st.lists(st.integers(0, 10), max_size=4),
    st.randoms(use_true_random=False),
)
def test_furniture_depends_on_the_distinct_articles_not_their_copies_or_order(
    numbers, copies, random
):
    texts = [_story(number, lines=2 + number % 3) for number in numbers]
    copied = texts + [texts[pick % len(texts)] for pick in copies]
    random.shuffle(copied)
    assert furniture_lines(copied) == furniture_lines(texts)


def test_the_lines_kept_between_builds_are_bounded_in_characters():
    cache = _LineCache(limit=200)
    first, second = _story(1, lines=2), _story(2, lines=2)
    assert cache.line_keys(first) == line_keys(first)
    cache.line_keys(second)  # over the limit together: the first goes
    assert list(cache._entries) == [hashlib.sha256(second.encode()).digest()]
    assert cache._chars == sum(map(len, line_keys(second))) <= 200

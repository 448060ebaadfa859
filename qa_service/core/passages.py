"""The passage records, and an article split into them: runs of one to three whole
sentences (at most 600 characters; a longer sentence stays whole), each heading a
passage of its own, with exact character, UTF-8 byte and line offsets
(`text[passage.start:passage.end] == passage.text`); boilerplate, code and footnote
markers are left out of the passages, never removed from the text.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from .layout import paragraph_spans
from .sentences import split_sentences

MAX_PASSAGE_CHARS = 600
MAX_PASSAGE_SENTENCES = 3


class Token(NamedTuple):
    """An analysed term of a passage and where its word stands in the source."""

    term: str
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A run of whole sentences from one source, with its exact location there."""

    source: str
    start: int
    end: int
    text: str
    byte_start: int
    byte_end: int
    line_start: int
    line_end: int
    # (start, end) of each sentence, in the same source offsets.
    sentences: tuple[tuple[int, int], ...]
    # A title, heading or byline: a line of its own that states no fact.
    heading: bool = False

    @property
    def id(self) -> str:
        """Stable identifier: the source name and character span."""
        return f"{self.source}:{self.start}-{self.end}"


def split_passages(
    text: str,
    source: str,
    *,
    max_chars: int = MAX_PASSAGE_CHARS,
    max_sentences: int = MAX_PASSAGE_SENTENCES,
    boilerplate: frozenset[str] = frozenset(),
) -> list[Passage]:
    """Split article text into passages of 1..max_sentences whole sentences.

    `boilerplate` holds lines to leave out, e.g. the whole corpus's
    `furniture.furniture_lines`.
    """
    locator = _Locator(text)
    passages = []
    for paragraph in paragraph_spans(text, boilerplate=boilerplate):
        if paragraph.heading or paragraph.row:
            # A heading or a table's row is one statement; its own full stops ("U.S.
            # Sues", "v1.2") split nothing.
            sentences = [(paragraph.start, paragraph.end)]
        else:
            sentences = split_sentences(text, paragraph.start, paragraph.end)
        for group in _group_sentences(sentences, max_chars, max_sentences):
            start, end = group[0][0], group[-1][1]
            passages.append(
                Passage(
                    source=source,
                    start=start,
                    end=end,
                    text=text[start:end],
                    byte_start=locator.byte_offset(start),
                    byte_end=locator.byte_offset(end),
                    line_start=locator.line_number(start),
                    line_end=locator.line_number(end - 1),
                    sentences=tuple(group),
                    heading=paragraph.heading,
                )
            )
    return passages


def _group_sentences(
    sentences: list[tuple[int, int]], max_chars: int, max_sentences: int
) -> Iterator[list[tuple[int, int]]]:
    """Pack consecutive sentences into passages; a longer sentence stays whole."""
    group: list[tuple[int, int]] = []
    for sentence in sentences:
        if group and (len(group) >= max_sentences or sentence[1] - group[0][0] > max_chars):
            yield group
            group = []
        group.append(sentence)
    if group:
        yield group


class _Locator:
    """Turns character offsets into UTF-8 byte offsets and 1-based line numbers."""

    def __init__(self, text: str):
        self.text = text
        self.newlines = [i for i, char in enumerate(text) if char == "\n"]
        self._char = 0
        self._byte = 0

    def byte_offset(self, char_offset: int) -> int:
        """UTF-8 byte offset of a character offset (calls must not go backwards)."""
        if char_offset < self._char:
            self._char, self._byte = 0, 0
        self._byte += len(self.text[self._char : char_offset].encode("utf-8"))
        self._char = char_offset
        return self._byte

    def line_number(self, char_offset: int) -> int:
        """1-based number of the line holding the character at `char_offset`."""
        return bisect.bisect_left(self.newlines, char_offset) + 1

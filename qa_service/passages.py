"""Split an article into passages of whole sentences with exact offsets.

Every offset is into the article text exactly as decoded from UTF-8:
`text[passage.start:passage.end] == passage.text`. Nothing is normalised or
removed from the text itself; boilerplate, headings and footnote markers are
only left out of the passages, so they cannot shift an offset.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

# Bump when the splitting rules change so that existing indexes are rebuilt.
SPLITTER_VERSION = 1

MAX_PASSAGE_CHARS = 600
MAX_PASSAGE_SENTENCES = 3

# Whole lines that are page furniture rather than article text.
_BOILERPLATE = re.compile(
    r"""^(?:
        share(?:\s+(?:this|on)\b.*)?
      | menu | search | advertisement | read\s+more | skip\s+to\b.*
      | (?:subscribe|sign(?:ing)?\s+up|join)\b.*\bnewsletter\b.*
      | .*\bindicates\s+required\s+fields?\b.*
      | \w+\s+(?:logo|icon)
      | (?:related|popular|featured|recommended|trending|latest|more)
        (?:\s+(?:posts?|articles?|stories|news|reading))?
      | brands?\s+mentioned\b.* | stay\s+updated\b.* | suggested\s+read\b.*
      | (?:©|copyright\b).* | all\s+rights\s+reserved\W*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# Punctuation that may end a sentence, and the quotes/brackets that may close it.
_SENTENCE_END = re.compile(r"[.!?…]+['\"”’)\]]*\s+")
_LINE_END_PUNCT = ".!?…:;\"'”’)]"
_MINOR_WORDS = frozenset(
    """a an and as at but by for from in into of on or over the to under via vs with""".split()
)
# Words that end in a period without ending a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt inc ltd co corp llc plc dept univ gov sen rep gen
    approx est vs jan feb mar apr jun jul aug sep sept oct nov dec cal
    e.g i.e cf al""".split()
)
# Abbreviations only when a number follows ("No. 5"); otherwise ordinary words ("said no.").
_NUMBER_ABBREVIATIONS = frozenset("no nos vol fig pp sec art".split())
_EXTRA_SPACE = "\ufeff\u200b\u200c\u200d\u2060"


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
) -> list[Passage]:
    """Split article text into passages of 1..max_sentences whole sentences."""
    locator = _Locator(text)
    passages = []
    for flow_start, flow_end in paragraph_spans(text):
        sentences = split_sentences(text, flow_start, flow_end)
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
                )
            )
    return passages


def paragraph_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of each paragraph of article text, skipping non-prose lines.

    A paragraph is a run of prose lines; a line continues the one before when
    that line does not end like a sentence and this one starts in lower case,
    or when the line before ends with a colon (a quotation that follows).
    """
    seen: set[str] = set()
    current: tuple[int, int] | None = None
    gap_lines = 0
    for start, end in _line_spans(text):
        line = text[start:end]
        if not line:
            gap_lines += 1
            continue
        if not is_prose_line(line) or line in seen:
            # A repeated line is a teaser or caption, not a second statement.
            if current:
                yield current
                current = None
            continue
        seen.add(line)
        if current and _continues(text[current[0] : current[1]], line, gap_lines):
            current = (current[0], end)
        else:
            if current:
                yield current
            current = (start, end)
        gap_lines = 0
    if current:
        yield current


def is_prose_line(line: str) -> bool:
    """Whether a trimmed line is article prose (not a number, heading or boilerplate)."""
    if not any(char.isalpha() for char in line):
        return False  # footnote numbers, lone punctuation, emoji
    if _BOILERPLATE.match(line):
        return False
    return not _is_heading(line)


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split text[start:end] into trimmed sentence spans, dropping ones without letters."""
    spans = []
    sentence_start = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if _ends_sentence(text, sentence_start, match):
            spans.append((sentence_start, match.end()))
            sentence_start = match.end()
    spans.append((sentence_start, end))
    trimmed = (_trim(text, s, e) for s, e in spans)
    return [(s, e) for s, e in trimmed if any(char.isalpha() for char in text[s:e])]


def _ends_sentence(text: str, sentence_start: int, match: re.Match) -> bool:
    """A candidate boundary ends a sentence unless an abbreviation or lower case says not."""
    following = text[match.end() : match.end() + 1]
    if following and following.islower():
        return False
    punct = match.group().rstrip()
    if not punct.startswith("."):
        return True
    word = text[sentence_start : match.start()].rsplit(None, 1)[-1:]
    if not word:
        return True
    word = word[0].lstrip("(\"'“‘[").lower()
    if word in _NUMBER_ABBREVIATIONS:
        return not following.isdigit()
    # "U.S." and single initials ("J.") are abbreviations, as are the listed words.
    return not ("." in word or (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS)


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


def _is_heading(line: str) -> bool:
    """Short lines and title-cased lines that do not end like a sentence."""
    if line.endswith(tuple(_LINE_END_PUNCT)):
        return False
    words = [word for word in line.split() if word[:1].isalpha()]
    if len(words) < 6:
        return True
    significant = [word for word in words if word.lower() not in _MINOR_WORDS]
    capitalised = sum(word[0].isupper() for word in significant)
    return capitalised >= 0.75 * len(significant)


def _continues(paragraph: str, line: str, gap_lines: int) -> bool:
    """Whether `line` carries on the paragraph before it rather than starting a new one."""
    if paragraph.endswith(":"):
        return True
    if gap_lines > 0 or paragraph.endswith(tuple(_LINE_END_PUNCT)):
        return False
    return line[0].islower()


def _line_spans(text: str) -> Iterator[tuple[int, int]]:
    """Yield the trimmed (start, end) of every line; a blank line gives an empty span."""
    offset = 0
    for line in text.splitlines(keepends=True):
        yield _trim(text, offset, offset + len(line))
        offset += len(line)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span past surrounding whitespace, including no-break and zero-width spaces."""
    while start < end and (text[start].isspace() or text[start] in _EXTRA_SPACE):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _EXTRA_SPACE):
        end -= 1
    return start, end


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

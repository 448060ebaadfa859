"""Citations that stay checkable after their source changes: where quoted words now stand.

A citation names the version of the source it indexes (`sha256` of its text).
When the source has changed since, the quoted words are looked for in the
current text: at the same place, elsewhere (the nearest occurrence to where
they were), or nearly the same (a close match of at least CLOSE_ENOUGH).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rapidfuzz import fuzz

from .results import SourceDocument

# The least similarity (rapidfuzz's partial ratio, 0-100) of words still "the same, reworded".
CLOSE_ENOUGH = 90.0


class Status(Enum):
    """What became of the cited words."""

    HOLDS = "holds"  # the current text has them at the cited offsets
    MOVED = "moved"  # the same words, at other offsets
    CHANGED = "changed"  # close words (an edit inside the quote), at `start`-`end`
    GONE = "gone"  # nothing close in the current text, or the source was deleted
    UNKNOWN_VERSION = "unknown_version"  # the cited version is not kept


@dataclass(frozen=True)
class Verdict:
    """What a citation points at in the current version of its source."""

    status: Status
    quoted: str | None  # the cited words, from the version cited
    start: int | None = None  # where they (or close words) stand now
    end: int | None = None


def verify(
    cited: SourceDocument | None, current: SourceDocument | None, start: int, end: int
) -> Verdict:
    """Where the words at `start`-`end` of the `cited` version stand in the `current` one."""
    if cited is None:
        return Verdict(Status.UNKNOWN_VERSION, None)
    quoted = cited.text[start:end]
    if current is None:
        return Verdict(Status.GONE, quoted)
    text = current.text
    if text[start:end] == quoted:
        return Verdict(Status.HOLDS, quoted, start, end)
    found = list(_occurrences(text, quoted))
    if found:
        nearest = min(found, key=lambda i: abs(i - start))
        return Verdict(Status.MOVED, quoted, nearest, nearest + len(quoted))
    match = fuzz.partial_ratio_alignment(quoted, text, score_cutoff=CLOSE_ENOUGH)
    if match is None or not quoted:
        return Verdict(Status.GONE, quoted)
    return Verdict(Status.CHANGED, quoted, *_whole_words(text, match.dest_start, match.dest_end))


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span that cuts a word to take it whole (an alignment window can be one off)."""
    while 0 < start < len(text) and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while 0 < end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return start, end


def _occurrences(text: str, words: str):
    if not words:
        return
    at = text.find(words)
    while at != -1:
        yield at
        at = text.find(words, at + 1)

"""A citation written out for readers and reference managers: plain text, Markdown, CSL-JSON.

No Flask here: the page passes in what only it knows (the link) and shows or copies these.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass

# ISO 8601 as sidecar files give dates: a year, a month or a day, maybe with a time after.
_ISO_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ].*)?")
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
# Characters Markdown would read as formatting (or as the end of the link text).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>])")


@dataclass(frozen=True)
class Reference:
    """What a citation names: the words quoted, where they stand, and the article's metadata."""

    quote: str
    title: str
    source: str  # the article's file name in the corpus
    start: int
    end: int
    line_start: int
    line_end: int
    url: str
    publisher: str | None = None
    date: str | None = None  # as the article's metadata gives it


def date_parts(value: str | None) -> tuple[int, ...] | None:
    """The year, month and day an ISO 8601 date holds (as many as it gives), or None."""
    match = _ISO_DATE.fullmatch(value.strip()) if value else None
    if match is None:
        return None
    parts = tuple(int(part) for part in match.groups() if part is not None)
    try:
        datetime.date(*parts, *(1,) * (3 - len(parts)))
    except ValueError:  # "2025-13-40" is not a date, however it is written
        return None
    return parts


def reader_date(value: str | None) -> str | None:
    """A date as readers write it ("27 January 2025"); one that is not ISO 8601 as given."""
    parts = date_parts(value)
    if parts is None:
        return value or None
    words = [str(parts[0])]
    if len(parts) > 1:
        words.insert(0, _MONTHS[parts[1] - 1])
    if len(parts) > 2:
        words.insert(0, str(parts[2]))
    return " ".join(words)


def line_range(start: int, end: int) -> str:
    """ "line 13", or "lines 13–15" when the span crosses lines."""
    return f"line {start}" if start == end else f"lines {start}–{end}"


def _where(reference: Reference) -> list[str]:
    """The parts every format names after the title: publisher and date when known, the place."""
    return [
        part
        for part in (
            reference.publisher,
            reader_date(reference.date),
            f"{reference.source}, characters {reference.start}–{reference.end}",
            line_range(reference.line_start, reference.line_end),
        )
        if part
    ]


def plain_text(reference: Reference) -> str:
    """“Quote” — Title, Publisher, 27 January 2025, file, characters a–b, line n. URL"""
    where = ", ".join([reference.title, *_where(reference)])
    return f"“{reference.quote}” — {where}. {reference.url}"


def markdown(reference: Reference) -> str:
    """The quote, then the title as a Markdown link to the cited span, then the rest."""
    title = _MARKDOWN_SPECIAL.sub(r"\\\1", reference.title)
    quote = _MARKDOWN_SPECIAL.sub(r"\\\1", reference.quote)
    # The URL is taken as given: the page percent-encodes brackets in it, which some
    # renderers would read as the end of the link.
    return ", ".join([f"“{quote}” — [{title}]({reference.url})", *_where(reference)])


def csl_json(reference: Reference) -> str:
    """One CSL-JSON item (in a list, as reference managers import them) for the article."""
    item = {
        "id": f"{reference.source}#{reference.start}-{reference.end}",
        "type": "article-newspaper",
        "title": reference.title,
    }
    if reference.publisher:
        item["container-title"] = reference.publisher
    if parts := date_parts(reference.date):
        item["issued"] = {"date-parts": [list(parts)]}
    elif reference.date:
        item["issued"] = {"raw": reference.date}
    item["URL"] = reference.url
    # CSL has no label for characters: the locator holds the range, the note says what it is.
    item["locator"] = f"{reference.start}–{reference.end}"
    item["note"] = f"Characters {reference.start}–{reference.end} of {reference.source}"
    return json.dumps([item], ensure_ascii=False, indent=2)


FORMATS = {"text": plain_text, "markdown": markdown, "csl-json": csl_json}

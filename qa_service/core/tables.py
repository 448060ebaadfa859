"""Tables in plain text: Markdown pipe tables, reStructuredText grid and simple tables,
and columns lined up with spaces. A row is one statement ("header plus row": its
values, read under the column names of the header), so each row becomes a passage
of its own, cited exactly, with the header as its context.

Only a whole block (lines between blank lines) is taken for a table, and only when
every line fits the table's shape: prose with a "|" in it stays prose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

# A Markdown header rule: "|---|:--:|", "--- | ---".
_PIPE_RULE = re.compile(r"\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?|\|\s*:?-{3,}:?\s*\|")
# reST grid borders: "+----+----+" (rows) and "+====+====+" (under the header).
_GRID_BORDER = re.compile(r"\+(?:-+\+){2,}")
_GRID_HEADER_BORDER = re.compile(r"\+(?:=+\+){2,}")
_GRID_ROW = re.compile(r"\|.*\|")
# reST simple table borders "=====  =====", and column rules "-----  -----" under a header.
_SIMPLE_BORDER = re.compile(r"=+(?: +=+)+")
_DASH_RULE = re.compile(r"-{3,}(?: +-{3,})+")
# Columns lined up with spaces: at least this many lines, two columns, two spaces apart.
_ALIGNED_MIN_LINES = 3
_COLUMN_GAP = 2
# How far back from a row the header of its table is looked for (a table's size).
HEADER_SEARCH_CHARS = 64 * 1024


class Span(NamedTuple):
    """A [start, end) range of the text."""

    start: int
    end: int


class Line(NamedTuple):
    """A line of a block: where it begins, and its trimmed span."""

    line_start: int
    start: int
    end: int


class Table(NamedTuple):
    """A table's header (None when it has none) and its rows, as trimmed spans."""

    header: Span | None
    rows: list[Span]


def find_table(text: str, block: Sequence[Line]) -> Table | None:
    """The table a block's lines make, or None when they are not one."""
    if len(block) < 2:
        return None
    contents = [text[line.start : line.end] for line in block]
    # Most blocks are prose: a look at two lines rules out every kind of table.
    marked = contents[0][0] in "+=" or "|" in contents[1]
    aligned = len(block) >= _ALIGNED_MIN_LINES and all("  " in line for line in contents[:2])
    if not marked and not aligned:
        return None
    lines = [Span(line.start, line.end) for line in block]
    for reader in (_pipe_table, _grid_table, _simple_table):
        table = reader(contents, lines)
        if table is not None and table.rows:
            return table
    if aligned:
        written = [text[line.line_start : line.end].expandtabs(8) for line in block]
        table = _aligned_table(written, lines)
        if table is not None and table.rows:
            return table
    return None


def header_of_row(text: str, start: int) -> Span | None:
    """The header of the table whose row starts at `start`, if it starts one that has one."""
    begin, end = _block_around(text, start)
    block: list[Line] = []
    offset = begin
    for raw in text[begin:end].splitlines(keepends=True):
        content = raw.strip()
        if content:
            first = offset + raw.index(content[0])
            block.append(Line(offset, first, first + len(content)))
        offset += len(raw)
    table = find_table(text, block)
    if table is None or not any(row.start == start for row in table.rows):
        return None
    return table.header


def _block_around(text: str, start: int) -> tuple[int, int]:
    """The lines around `start` up to a blank line each way (at most a table's size)."""
    begin = text.rfind("\n", 0, start) + 1
    while begin > max(0, start - HEADER_SEARCH_CHARS):
        before = text.rfind("\n", 0, begin - 1) + 1
        if not text[before:begin].strip():
            break
        begin = before
    end = text.find("\n", start)
    while 0 <= end < start + HEADER_SEARCH_CHARS:
        after = text.find("\n", end + 1)
        if not text[end + 1 : len(text) if after < 0 else after].strip():
            break
        end = after
    return begin, len(text) if end < 0 else end


def _pipe_table(contents: list[str], lines: Sequence[Span]) -> Table | None:
    """A Markdown table: a header, a rule of dashes, rows; every line with a "|"."""
    if not _PIPE_RULE.fullmatch(contents[1]) or not all("|" in line for line in contents):
        return None
    return Table(lines[0], list(lines[2:]))


def _grid_table(contents: list[str], lines: Sequence[Span]) -> Table | None:
    """A reST grid table: borders of "+---+", rows of "| … |" (a row may take several lines)."""
    if not _GRID_BORDER.fullmatch(contents[0]):
        return None
    groups: list[list[Span]] = [[]]
    header_groups = 0
    for content, line in zip(contents, lines, strict=True):
        if _GRID_BORDER.fullmatch(content) or _GRID_HEADER_BORDER.fullmatch(content):
            if _GRID_HEADER_BORDER.fullmatch(content):
                header_groups = len([group for group in groups if group])
            groups.append([])
        elif _GRID_ROW.fullmatch(content):
            groups[-1].append(line)
        else:
            return None
    spans = [Span(group[0].start, group[-1].end) for group in groups if group]
    if header_groups == 1:
        return Table(spans[0], spans[1:])
    return Table(None, spans)


def _simple_table(contents: list[str], lines: Sequence[Span]) -> Table | None:
    """A reST simple table: "===  ===" borders around the header and at the end."""
    if not _SIMPLE_BORDER.fullmatch(contents[0]):
        return None
    borders = [i for i, line in enumerate(contents) if _SIMPLE_BORDER.fullmatch(line)]
    if len(borders) == 3 and borders[1] - borders[0] == 2:
        header, first_row = lines[1], borders[1] + 1
    else:
        header, first_row = None, 1
    rows = [
        line
        for i, line in enumerate(lines[first_row:], start=first_row)
        if i not in borders and not _DASH_RULE.fullmatch(contents[i])
    ]
    return Table(header, rows)


def _aligned_table(written: list[str], lines: Sequence[Span]) -> Table | None:
    """Columns lined up with runs of spaces, the first line (or those over a rule) the header.

    `written` are the lines as laid out (indent included, tabs expanded): a column
    gap is a run of two or more columns blank in every line, between text, and every
    wide space inside a line falls in one (prose with two spaces after a full stop
    has them in no common place); a wide space need only reach into a gap, as a
    short cell's does.
    """
    if any("|" in line for line in written):
        return None
    width = max(map(len, written))
    blank = [all(i >= len(line) or line[i] == " " for line in written) for i in range(width)]
    text_columns = [i for i, is_blank in enumerate(blank) if not is_blank]
    gaps = [
        range(begin, end)
        for begin, end in _runs(blank, text_columns[0], text_columns[-1])
        if end - begin >= _COLUMN_GAP
    ]
    if not gaps:
        return None
    for line in written:
        stripped = line.rstrip()
        indent = len(stripped) - len(stripped.lstrip())
        wide = [
            range(match.start() + indent, match.end() + indent)
            for match in re.finditer(r" {2,}", stripped.lstrip())
        ]
        overlaps = (
            any(run.start < gap.stop and gap.start < run.stop for gap in gaps) for run in wide
        )
        if not wide or not all(overlaps):
            return None
    rule = next((i for i, line in enumerate(written) if _DASH_RULE.fullmatch(line.strip())), None)
    if rule == 1:
        return Table(lines[0], list(lines[2:]))
    if rule is not None:
        return None
    return Table(lines[0], list(lines[1:]))


def _runs(blank: list[bool], first: int, last: int) -> list[tuple[int, int]]:
    """The [begin, end) runs of blank columns between `first` and `last`."""
    runs, begin = [], None
    for i in range(first, last + 1):
        if blank[i] and begin is None:
            begin = i
        elif not blank[i] and begin is not None:
            runs.append((begin, i))
            begin = None
    return runs

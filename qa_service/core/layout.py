"""Lines to paragraphs: each trimmed line of an article judged alone (noise, code,
heading, fragment or prose) and then with its block's lines, hard-wrapped lines
joined into one logical line, and runs of prose lines made paragraphs, each heading
one of its own; every span an offset into the text as decoded.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from typing import NamedTuple

from .tables import Line, Table, find_table

# Hard-wrapped text is wrapped at 60-100 columns; one-paragraph-a-line text
# (news) has lines of any length, so a block with a longer line is not wrapped.
MAX_WRAP_COLUMNS = 100
# A wrapped line runs to near the margin: the word that did not fit went on.
FULL_LINE_SHARE = 0.7

# Whole lines that are page furniture on any site: generic navigation and UI words.
_NAVIGATION = re.compile(
    r"""^(?:
        share(?:\s+(?:this(?:\s+\w+)?|on\s+\w+))? | tweet | email | print | comments?
      | menu | search | close | advertisement | sponsored(?:\s+content)?
      | read\s+more | continue\s+reading | skip\s+to\b.* | back\s+to\s+top
      | log\s*in | sign\s*in | sign\s*up | register | follow\s+us\b.*
      | (?:subscribe|sign(?:ing)?\s+up|join)\b.*\bnewsletter\b.*
      | .*\bindicates\s+required\s+fields?\b.*
      | \w+\s+(?:logo|icon)
      | (?:related|popular|featured|recommended|trending|latest|more)
        (?:(?:\s+\w+)?\s+(?:posts?|articles?|stories|news|reading))?
      | (?:\w+\s+)?mentioned\s+in\s+this\s+(?:article|post|story)\W*
      | suggested\s+read(?:ing)?\b.*
      | (?:©|copyright\b).* | all\s+rights\s+reserved\W*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# A shell prompt before a command: "$ ls", "# apt-get install foo" (a Markdown
# heading "# Installing" starts in upper case).
_SHELL_PROMPT = re.compile(r"[$#]\s+[a-z./~]")
# A word of code or data rather than of a sentence.
_CODE_TOKEN = re.compile(
    r"""(?:^|\W)/\w          # an absolute path or a URL
      | \w/[\w.-]+/          # a relative path: two slashes ("GNU/Linux" is a word)
      | [\\=<>{}\[\]|;`~^_@]  # operators, markup, snake_case, e-mail
      | ^--?[a-z]            # a command-line option
      | \d[.:]\d+[.:-]\d     # a version string or a time: 1.3.18, 18:10:33
      | [a-z]:[a-z]          # name:value, package:arch
    """,
    re.IGNORECASE | re.VERBOSE,
)
_OPERATOR = re.compile(r"[-=<>|&!:+*/]*[=<>|&][-=<>|&!:+*/]*")
_CODE_CHARS = frozenset("<>{}[]|=\\`^")
# Columns lined up with runs of spaces: a table or program output.
_COLUMN_GAP = re.compile(r"\S {3,}\S")
# Ends like a sentence, strictly: a closing bracket alone ("(>= 2.14)") does not count.
_SENTENCE_FINAL = re.compile(r"[.!?…:]['\"”’)\]]*$")
# Punctuation around a word that says nothing about whether it is code.
_TOKEN_EDGE = "\"'“”‘’«»()[]{},.;:!?…*"
# A "Name: value" field of configuration or program output: "Version: 2.9-2".
_FIELD = re.compile(r"[\w-]+(?: [\w-]+)?:\s")
# "- item", "* item", "• item", "1. item", "2) item"
_LIST_ITEM = re.compile(r"(?:[-*•+–]|\d{1,3}[.)])\s+(?=\S)")
_LINE_END_PUNCT = ".!?…:;\"'”’)]"
_MINOR_WORDS = frozenset(
    """a an and as at but by for from in into of on or over the to under via vs with""".split()
)
_EXTRA_SPACE = "\ufeff\u200b\u200c\u200d\u2060"


class LineKind(enum.Enum):
    """What a trimmed line of an article is (judged alone, then with its block's lines)."""

    NOISE = "noise"  # no letters (footnote numbers, rules), or site navigation
    CODE = "code"  # a command, a path, configuration or data
    HEADING = "heading"  # a title, heading or byline: short, or title-cased, no full stop
    # Short, all lower case, no full stop: a bare command or file name ("apt
    # update", "preinst") or a phrase broken off by them ("followed by").
    FRAGMENT = "fragment"
    PROSE = "prose"
    ROW = "row"  # a table's row: one statement, read under its header (tables.py)


class Paragraph(NamedTuple):
    """A span of article text to split into sentences, or a heading or table row kept whole."""

    start: int
    end: int
    heading: bool = False
    row: bool = False


def paragraph_spans(text: str, *, boilerplate: frozenset[str] = frozenset()) -> Iterator[Paragraph]:
    """Yield each paragraph and heading of article text, skipping lines that are not prose.

    Lines are logical: a hard-wrapped paragraph's lines count as one. A paragraph
    is a run of prose lines; a line continues the one before when that one does
    not end like a sentence and this one starts in lower case or carries on a
    list, or when the line before ends with a colon (a quotation that follows).
    A heading is a paragraph of its own.
    """
    boilerplate = frozenset(map(line_key, boilerplate))
    seen: set[str] = set()
    current: tuple[int, int] | None = None
    previous_line = ""
    for line in logical_lines(text):
        content = text[line.start : line.end]
        key = line_key(content)
        wanted = (LineKind.PROSE, LineKind.HEADING, LineKind.ROW)
        # A repeated line is a teaser or caption, not a second statement; a table's row
        # is one under its own header ("| 2 | yes |" in two tables says two things).
        repeated = key in seen and line.kind is not LineKind.ROW
        if line.kind not in wanted or key in boilerplate or repeated:
            if current:
                yield Paragraph(*current)
                current = None
            continue
        seen.add(key)
        if line.kind in (LineKind.HEADING, LineKind.ROW):
            if current:
                yield Paragraph(*current)
                current = None
            yield Paragraph(
                line.start,
                line.end,
                heading=line.kind is LineKind.HEADING,
                row=line.kind is LineKind.ROW,
            )
            continue
        if current and _continues(previous_line, content, line.after_blank):
            current = (current[0], line.end)
        else:
            if current:
                yield Paragraph(*current)
            current = (line.start, line.end)
        previous_line = content
    if current:
        yield Paragraph(*current)


def line_kind(line: str) -> LineKind:
    """Classify one trimmed line as noise, code, heading, fragment or prose."""
    if not any(char.isalpha() for char in line) or _NAVIGATION.match(line):
        return LineKind.NOISE
    if _looks_like_code(line):
        return LineKind.CODE
    # A list item is content even when short ("- 1 (single-user mode),").
    if _is_list_item(line) or not _is_heading(line):
        return LineKind.PROSE
    # Titles and bylines name something: "18 Sources", "by Jane Doe", "iPhone 16".
    if any(char.isupper() or char.isdigit() for char in line):
        return LineKind.HEADING
    return LineKind.FRAGMENT


def is_prose_line(line: str) -> bool:
    """Whether a trimmed line is article prose (not noise, code, a heading or navigation)."""
    return line_kind(line) is LineKind.PROSE


def _is_heading(line: str) -> bool:
    """Short lines and title-cased lines that do not end like a sentence."""
    if _ends_like_sentence(line):
        return False
    words = [word for word in line.split() if word[:1].isalpha()]
    return len(words) < 6 or is_title_case(line)


def is_title_case(text: str) -> bool:
    """Whether three in four of the words that are not minor words start with a capital."""
    words = [word for word in text.split() if word[:1].isalpha()]
    significant = [word for word in words if word.lower() not in _MINOR_WORDS]
    capitalised = sum(word[0].isupper() for word in significant)
    return bool(significant) and capitalised >= 0.75 * len(significant)


def _looks_like_code(line: str) -> bool:
    """A command, path, configuration or data line, judged by its words and symbols.

    Conservative: a sentence with one path or URL in it stays prose.
    """
    if _SHELL_PROMPT.match(line) or line.endswith("\\"):
        return True
    # Judge a list item by its text: "- dpkg --search foo".
    item_text = line[_LIST_ITEM.match(line).end() :] if _is_list_item(line) else line
    words = [word.strip(_TOKEN_EDGE) for word in item_text.split()]
    words = [word for word in words if word]
    code_words = sum(bool(_CODE_TOKEN.search(word)) for word in words)
    if code_words * 2 > len(words):
        return True
    if _SENTENCE_FINAL.search(line):
        return False
    code_chars = sum(char in _CODE_CHARS for char in line)
    return (
        code_words * 3 >= len(words) > 0
        # "Depends: libc6 (>= 2.14)"; a long line with "-->" in it is still prose.
        or (len(words) <= 6 and any(_OPERATOR.fullmatch(word) for word in words))
        or bool(_COLUMN_GAP.search(line))
        or (code_chars >= 3 and code_chars >= 0.1 * len(line))
    )


def _ends_like_sentence(line: str) -> bool:
    """Loosely: any closing punctuation, a bracket or quote included (see _SENTENCE_FINAL)."""
    return line.endswith(tuple(_LINE_END_PUNCT))


def _is_list_item(line: str) -> bool:
    """A bullet, or a number before a capital: "- item", "2) Item" (not "11) and" wrapped on)."""
    match = _LIST_ITEM.match(line)
    return bool(match) and not (line[0].isdigit() and line[match.end()].islower())


def _carries_on(line: str) -> bool:
    """Whether a line reads as the rest of a sentence: its first word is in lower case."""
    first_word = next((word for word in line.split() if any(map(str.isalpha, word))), "")
    return first_word.islower() and not _is_list_item(line)


def _continues(previous_line: str, line: str, after_blank: bool) -> bool:
    """Whether `line` carries on the paragraph of `previous_line` rather than starting one."""
    if previous_line.endswith(":"):
        return True
    if _ends_like_sentence(previous_line):
        return False
    if _is_list_item(line) and _is_list_item(previous_line):
        # An item ending in "," or "and": the list is one sentence ("- 0 (halt),").
        return True
    if after_blank:
        return False
    return line[0].islower()


def line_key(line: str) -> str:
    """A line as compared for repeats: trimmed, runs of whitespace made one space."""
    return " ".join(line.split())


class _Line(NamedTuple):
    """A logical line (one line, or the lines of a hard-wrapped paragraph) and what it is."""

    start: int
    end: int
    kind: LineKind
    after_blank: bool = False


def logical_lines(text: str) -> Iterator[_Line]:
    """Yield the logical lines of text, trimmed and classified, in order."""
    for block_number, block in enumerate(_blocks(text)):
        table = find_table(text, [Line(*line) for line in block])
        lines = _table_lines(table) if table else _join_wrapped(text, block)
        for line_number, line in enumerate(lines):
            yield line._replace(after_blank=line_number == 0 and block_number > 0)


def _table_lines(table: Table) -> Iterator[_Line]:
    """A table's header as a heading (it names the columns), then each row."""
    if table.header:
        yield _Line(*table.header, LineKind.HEADING)
    for row in table.rows:
        yield _Line(*row, LineKind.ROW)


def _blocks(text: str) -> Iterator[list[tuple[int, int, int]]]:
    """Yield each block of consecutive non-blank lines as (line start, trimmed start, end)."""
    block: list[tuple[int, int, int]] = []
    offset = 0
    for raw in text.splitlines(keepends=True):
        start, end = trim(text, offset, offset + len(raw))
        if start < end:
            block.append((offset, start, end))
        elif block:
            yield block
            block = []
        offset += len(raw)
    if block:
        yield block


def _join_wrapped(text: str, block: list[tuple[int, int, int]]) -> Iterator[_Line]:
    """Yield a block's logical lines, joining the lines the margin broke off one another."""
    lines = [text[start:end] for _, start, end in block]
    kinds = [line_kind(line) for line in lines]
    ends = [end - line_start for line_start, _, end in block]
    indents = [len(text[line_start:start].expandtabs(4)) for line_start, start, _ in block]
    _spread_code(lines, kinds, indents)
    first = 0
    for index, broken in enumerate(_margin_breaks(lines, kinds, ends, indents)):
        if broken:
            continue
        start, end = block[first][1], block[index][2]
        kind = kinds[first] if first == index else _paragraph_kind(text[start:end])
        yield _Line(start, end, kind)
        first = index + 1


def _margin_breaks(
    lines: list[str], kinds: list[LineKind], ends: list[int], indents: list[int]
) -> list[bool]:
    """For each line of a block, whether the margin broke it off the line after it.

    Only a hard-wrapped block has such breaks: several lines, most running to
    near the widest, and at least one sentence broken off by the margin. Text
    with one paragraph a line (news) has none: each line ends like a sentence or
    is a heading, or the lines are longer than any margin.
    """
    breaks = [False] * len(lines)
    margin = max(ends)
    if len(lines) < 2 or margin > MAX_WRAP_COLUMNS:
        return breaks
    at_margin = [_reaches_margin(ends[i], lines[i + 1], margin) for i in range(len(lines) - 1)]
    at_margin.append(False)
    if sum(at_margin) * 2 < len(lines) - 1:
        return breaks

    def reads_on(index: int) -> bool:
        # Prose runs on; a heading never does, unless the next line carries it
        # on in lower case ("The Linux File System Standard ... requires / that
        # ...": a title-cased start of a sentence). Code is not wrapped.
        if kinds[index] is LineKind.PROSE:
            return True
        return (
            kinds[index] in (LineKind.HEADING, LineKind.FRAGMENT)
            and kinds[index + 1] is LineKind.PROSE
            and _carries_on(lines[index + 1])
        )

    def may_be_rest(index: int) -> bool:
        # Whether line `index` may be the rest of the line before it.
        line, kind = lines[index], kinds[index]
        if _is_list_item(line) or _SHELL_PROMPT.match(line):
            return False
        if indents[index] >= indents[index - 1] + 4:
            return False  # indented further than the text it would carry on: code
        if _SENTENCE_FINAL.search(lines[index - 1]):
            return kind is LineKind.PROSE  # after a finished sentence, a heading is a heading
        if kind in (LineKind.HEADING, LineKind.NOISE):
            # Mid-sentence, a line that looks like a heading ("Free Software
            # Foundation and") or has no letters ("5.9.") runs to the margin or
            # ends in punctuation; a short bare one is a byline, caption or footnote mark.
            return at_margin[index] or bool(_SENTENCE_FINAL.search(line)) or line.endswith(",")
        return True

    broken = [i for i in range(len(lines) - 1) if at_margin[i] and may_be_rest(i + 1)]
    if not any(reads_on(i) and not _SENTENCE_FINAL.search(lines[i]) for i in broken):
        return breaks
    for index in broken:
        breaks[index] = (index > 0 and breaks[index - 1]) or reads_on(index)
    return breaks


def _reaches_margin(end: int, next_line: str, margin: int) -> bool:
    """A line ends near the margin, or the next line's first word would not have fitted."""
    next_word = next_line.split()[0]
    return end >= FULL_LINE_SHARE * margin or end + 1 + len(next_word) > margin


def _paragraph_kind(paragraph: str) -> LineKind:
    """Classify a hard-wrapped paragraph as a whole: prose, or code, or noise."""
    if not any(char.isalpha() for char in paragraph):
        return LineKind.NOISE
    return LineKind.CODE if _looks_like_code(line_key(paragraph)) else LineKind.PROSE


def _spread_code(lines: list[str], kinds: list[LineKind], indents: list[int]) -> None:
    """Fields ("Version: 2.9-2") and indented short lines touching code in a block are code."""
    changed = True
    while changed:
        changed = False
        for index, kind in enumerate(kinds):
            neighbours = kinds[max(index - 1, 0) : index + 2]
            if (
                kind is LineKind.HEADING
                and LineKind.CODE in neighbours
                and (indents[index] > 0 or _FIELD.match(lines[index]))
            ):
                kinds[index] = LineKind.CODE
                changed = True


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span past surrounding whitespace, including no-break and zero-width spaces."""
    while start < end and (text[start].isspace() or text[start] in _EXTRA_SPACE):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _EXTRA_SPACE):
        end -= 1
    return start, end

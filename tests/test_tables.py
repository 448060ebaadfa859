"""Tables in plain text become passages: each row one, cited exactly, read under its header."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa_service.core.passages import split_passages
from qa_service.core.tables import header_of_row

MARKDOWN = """Release history

| Version | Released   | Support ends |
|---------|:----------:|--------------|
| 3.11    | 2022-10-24 | 2027-10      |
| 3.12    | 2023-10-02 | 2028-10      |
"""
GRID = """+--------+-----------+
| Name   | Role      |
+========+===========+
| Alice  | Plaintiff |
+--------+-----------+
| Bob    | Judge of  |
|        | the court |
+--------+-----------+
"""
SIMPLE = """=====  ==========
City   Population
=====  ==========
Oslo   700000
Bergen 290000
=====  ==========
"""
ALIGNED = """Station        Opened   Line
Central        1901     Red
Harbour Road   1954     Blue
"""


@pytest.mark.parametrize(
    ("text", "header", "rows"),
    [
        (
            MARKDOWN,
            "| Version | Released   | Support ends |",
            ["| 3.11    | 2022-10-24 | 2027-10      |", "| 3.12    | 2023-10-02 | 2028-10      |"],
        ),
        (
            GRID,
            "| Name   | Role      |",
            ["| Alice  | Plaintiff |", "| Bob    | Judge of  |\n|        | the court |"],
        ),
        (SIMPLE, "City   Population", ["Oslo   700000", "Bergen 290000"]),
        (
            ALIGNED,
            "Station        Opened   Line",
            ["Central        1901     Red", "Harbour Road   1954     Blue"],
        ),
    ],
    ids=["markdown", "rest-grid", "rest-simple", "aligned-columns"],
)
def test_each_row_is_a_passage_read_under_its_header(text, header, rows):
    passages = split_passages(text, "table.txt")
    found = [p for p in passages if not p.heading]
    assert [p.text for p in found] == rows
    assert header in [p.text for p in passages if p.heading]
    for passage in found:
        assert text[passage.start : passage.end] == passage.text
        assert passage.sentences == ((passage.start, passage.end),)  # a row is one statement
        start, end = header_of_row(text, passage.start)
        assert text[start:end] == header


@pytest.mark.parametrize(
    "text",
    [
        "Prose that is  double spaced.  After full stops it goes on\n"
        "for a while and  then stops.  Here we are\nagain with a third line.\n",
        "The vote was 7 | 2 in favour, the clerk said.\nIt passed.\n",
        "Short line\nAnother one\n",
    ],
    ids=["double-spaced-prose", "prose-with-a-bar", "two-lines"],
)
def test_prose_is_not_taken_for_a_table(text):
    assert all(header_of_row(text, p.start) is None for p in split_passages(text, "prose.txt"))


# --- property: articles of prose paragraphs and tables of every kind, at random

CELL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé0123456789", min_size=1, max_size=8)


@st.composite
def table(draw) -> tuple[str, str, list[str]]:
    """A table's text, its header and its rows as they stand in it."""
    columns = draw(st.integers(2, 4))
    header = [f"Col{i}{draw(CELL)}" for i in range(columns)]
    rows = [[draw(CELL) for _ in range(columns)] for _ in range(draw(st.integers(1, 5)))]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(columns)]

    def laid(cells: list[str], gap: str) -> str:
        return gap.join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    style = draw(st.sampled_from(["markdown", "simple", "aligned"]))
    if style == "markdown":
        lines = [f"| {laid(header, ' | ')} |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        body = [f"| {laid(row, ' | ')} |" for row in rows]
        return "\n".join([*lines, *body]), lines[0], body
    body = [laid(row, "   ").rstrip() for row in rows]
    head = laid(header, "   ").rstrip()
    if style == "simple":
        border = "   ".join("=" * w for w in widths)
        return "\n".join([border, head, border, *body, border]), head, body
    # Aligned columns need rows enough to show the columns.
    body = body if len(body) >= 2 else [*body, body[0] + ""]
    return "\n".join([head, *body]), head, body


@st.composite
def article_with_tables(draw):
    text, tables = "", []
    for number in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            text += f"Paragraph {number} says a thing about the case.\n\n"
        else:
            body, header, rows = draw(table())
            tables.append((len(text), header, rows))
            text += body + draw(st.sampled_from(["\n\n", "\n\n\n", "\r\n\r\n"]))
    return text, tables


@settings(max_examples=200, deadline=None)
@given(article_with_tables())
def test_property_every_row_is_an_exactly_cited_passage_under_its_header(generated):
    text, tables = generated
    passages = split_passages(text, "random.txt")
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text
    for table_start, header, rows in tables:
        for row in rows:
            passage = next(p for p in passages if p.text == row and p.start >= table_start)
            start, end = header_of_row(text, passage.start)
            assert text[start:end] == header


def test_an_asked_row_is_cited_exactly_with_its_header_as_context(tmp_path):
    from qa_service.index import build_index
    from qa_service.web.app import create_app

    text = (
        "The city's tram stations\n\nThe tram network grew station by station.\n\n"
        + ALIGNED
        + "\nThe Blue line closed in 1990.\n"
    )
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "trams.txt").write_text(text, encoding="utf-8")
    build_index(tmp_path / "articles", tmp_path / "index")
    client = create_app({"INDEX_DIR": str(tmp_path / "index"), "TESTING": True}).test_client()
    body = client.get("/api/v1/ask", query_string={"q": "When did Harbour Road open?"}).get_json()
    top = body["passages"][0]
    assert top["text"] == "Harbour Road   1954     Blue"
    assert text[top["citation"]["start"] : top["citation"]["end"]] == top["text"]
    header = top["context_before"]
    assert header["text"] == "Station        Opened   Line"
    assert text[header["start"] : header["end"]] == header["text"]

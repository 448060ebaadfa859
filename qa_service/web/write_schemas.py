"""The HTTP contract of writing articles: the article written, and the write's status.

Like schemas.py (whose response base and error shape these use): requests reject
unknown fields; responses dump the domain dataclasses and load them back for the client.
"""

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, post_load, validate

from qa_service.core.citation_formats import date_parts
from qa_service.core.corpus import ARTICLE_NAME, WEB_ADDRESS
from qa_service.core.results import WriteStatus

from .schemas import ErrorDetailSchema, ResponseSchema, SourceInfoSchema


def _plain_text(value: str) -> None:
    """Text a file can hold as UTF-8, without NUL (which no article contains)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Must be valid Unicode text (no lone surrogates).") from None
    if "\x00" in value:
        raise ValidationError("Must not contain NUL.")


_NOT_ARTICLE_NAME = "A file name of letters, digits, '.', '_' or '-', ending .txt or .md."
_NOT_WEB_ADDRESS = "Not an http:// or https:// address."


def _iso_date(value: str) -> None:
    """A date as ISO 8601 writes it (year, year-month or year-month-day), and a real one."""
    if date_parts(value) is None:
        raise ValidationError("An ISO 8601 date, such as 2025-01-24.")


def _whole_match(pattern: re.Pattern, error: str):
    """A validator: the whole value matches `pattern` (validate.Regexp's "$" would also
    pass a value with a final newline, "x.txt\n"); the OpenAPI document gets the pattern
    anchored from metadata."""

    def check(value: str) -> None:
        if not pattern.fullmatch(value):
            raise ValidationError(error)

    return check


def _metadata_field(description: str) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=2000), _plain_text],
        metadata={"description": description},
    )


class SourceWriteSchema(Schema):
    """Body of PUT /api/v1/sources/<name> (and, with `name`, of POST /api/v1/sources)."""

    text = fields.String(
        required=True,
        validate=[validate.Regexp(r"\S", error="Must not be blank."), _plain_text],
        metadata={"description": "The article, as the citations will index it."},
    )
    title = _metadata_field("Shown with citations; else the article's first line.")
    publisher = _metadata_field("Who published it.")
    date = fields.String(
        validate=[validate.Length(min=1, max=2000), _iso_date],
        metadata={"description": "When it was published: an ISO 8601 date (2025-01-24, 2025-01)."},
    )
    url = fields.String(
        validate=[validate.Length(min=1, max=2000), _whole_match(WEB_ADDRESS, _NOT_WEB_ADDRESS)],
        metadata={
            "description": "Where the original is: an http(s) address.",
            "pattern": f"^{WEB_ADDRESS.pattern}$",
        },
    )


class SourceCreateSchema(SourceWriteSchema):
    """Body of POST /api/v1/sources."""

    name = fields.String(
        required=True,
        validate=_whole_match(ARTICLE_NAME, _NOT_ARTICLE_NAME),
        metadata={"pattern": f"^{ARTICLE_NAME.pattern}$"},
    )


class WriteSchema(ResponseSchema):
    """202 body of a write, and 200 body of GET /api/v1/writes/<id>: how the write stands."""

    id = fields.String(required=True, metadata={"description": "The write's id."})
    action = fields.String(required=True, validate=validate.OneOf(["add", "replace", "delete"]))
    source = fields.String(required=True, metadata={"description": "The article's name."})
    state = fields.String(
        required=True,
        validate=validate.OneOf(["indexing", "done", "failed"]),
        metadata={
            "description": "indexing; done: every answer comes from it; failed: nothing "
            "was changed (see error)"
        },
    )
    generation = fields.String(
        allow_none=True, metadata={"description": "The generation it was indexed in (done)."}
    )
    indexed = fields.Nested(
        SourceInfoSchema,
        allow_none=True,
        metadata={"description": "What is now indexed of the source (done, unless deleted)."},
    )
    error = fields.Nested(
        ErrorDetailSchema,
        allow_none=True,
        metadata={"description": "Why it failed, as an error response would say (failed)."},
    )

    @post_load
    def _make(self, data, **kwargs):
        return WriteStatus(**data)

"""The HTTP contract: marshmallow schemas for every request and response.

Requests reject unknown fields. Response schemas dump the domain dataclasses
and, for the client, load JSON back into them (ignoring fields added later).
"""

from __future__ import annotations

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from qa_service.core.results import (
    AnswerPassage,
    Answers,
    AnswerSpan,
    Citation,
    Conflict,
    SourceDocument,
    SourceInfo,
    Span,
    Verification,
)

QUESTION_MAX_CHARS = 500
K_DEFAULT, K_MAX = 5, 50
SOURCES_MAX = 100


class TrimmedString(fields.String):
    """A string with surrounding whitespace removed before validation."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class StrictInteger(fields.Integer):
    """An integer that must be a JSON number: no strings, floats or booleans."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def _without_nul(value: str) -> None:
    # NUL cannot be part of any article word and breaks many downstream tools.
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")


def _question_field(**kwargs) -> TrimmedString:
    return TrimmedString(
        required=True,
        validate=[validate.Length(min=1, max=QUESTION_MAX_CHARS), _without_nul],
        metadata={"description": f"The question, 1-{QUESTION_MAX_CHARS} characters once trimmed."},
        **kwargs,
    )


def _k_field(field_class=StrictInteger) -> fields.Integer:
    return field_class(
        load_default=K_DEFAULT,
        validate=validate.Range(min=1, max=K_MAX),
        metadata={"description": "How many passages to return."},
    )


class AskRequestSchema(Schema):
    """Body of POST /api/v1/ask."""

    question = _question_field()
    k = _k_field()
    sources = fields.List(
        fields.String(validate=validate.Length(min=1, max=QUESTION_MAX_CHARS)),
        validate=validate.Length(min=1, max=SOURCES_MAX),
        metadata={"description": "Only search these sources (names from /api/v1/sources)."},
    )


class AskQuerySchema(Schema):
    """Query string of GET /api/v1/ask."""

    question = _question_field(data_key="q")
    # Query-string values are text, so "5" is a valid k here.
    k = _k_field(fields.Integer)


class ResponseSchema(Schema):
    """Base for responses: clients ignore fields a newer server adds."""

    class Meta:
        unknown = EXCLUDE


class SpanSchema(ResponseSchema):
    start = fields.Integer(required=True)
    end = fields.Integer(required=True)

    @post_load
    def _make(self, data, **kwargs):
        return Span(**data)


class AnswerSpanSchema(ResponseSchema):
    text = fields.String(required=True)
    start = fields.Integer(required=True)
    end = fields.Integer(required=True)

    @post_load
    def _make(self, data, **kwargs):
        return AnswerSpan(**data)


class CitationSchema(ResponseSchema):
    source = fields.String(required=True, metadata={"description": "File name in the corpus."})
    title = fields.String(required=True)
    start = fields.Integer(required=True, metadata={"description": "Code point offset."})
    end = fields.Integer(required=True, metadata={"description": "Exclusive."})
    byte_start = fields.Integer(required=True, metadata={"description": "UTF-8 byte offset."})
    byte_end = fields.Integer(required=True)
    line_start = fields.Integer(required=True, metadata={"description": "1-based."})
    line_end = fields.Integer(required=True)
    sha256 = fields.String(
        allow_none=True,
        metadata={"description": "SHA-256 of the source text the offsets index (its version)."},
    )
    url = fields.String(allow_none=True, metadata={"description": "Source page at the span."})

    @post_load
    def _make(self, data, **kwargs):
        return Citation(**data)


class ConflictSchema(ResponseSchema):
    kind = fields.String(required=True, metadata={"description": "date or amount"})
    value = fields.String(required=True, metadata={"description": "As this passage states it."})
    other_value = fields.String(
        required=True, metadata={"description": "As the other source states it."}
    )
    citation = fields.Nested(CitationSchema, required=True)

    @post_load
    def _make(self, data, **kwargs):
        return Conflict(**data)


class AnswerPassageSchema(ResponseSchema):
    id = fields.String(required=True)
    rank = fields.Integer(required=True)
    score = fields.Float(required=True)
    text = fields.String(required=True, metadata={"description": "Exactly the cited span."})
    answer = fields.Nested(AnswerSpanSchema, required=True)
    highlights = fields.List(fields.Nested(SpanSchema), required=True)
    citation = fields.Nested(CitationSchema, required=True)
    corroborated_by = fields.List(
        fields.Nested(CitationSchema),
        load_default=list,
        metadata={"description": "Passages in other sources that state the same fact."},
    )
    conflicts = fields.List(
        fields.Nested(ConflictSchema),
        load_default=list,
        metadata={"description": "Where another source gives a different date or amount."},
    )
    context_before = fields.Nested(
        AnswerSpanSchema,
        allow_none=True,
        load_default=None,
        metadata={"description": "The sentence before (a table row's header); null at the start."},
    )

    @post_load
    def _make(self, data, **kwargs):
        return AnswerPassage(**data)


class AnswersSchema(ResponseSchema):
    """200 body of /api/v1/ask."""

    question = fields.String(required=True)
    answerable = fields.Boolean(required=True)
    took_ms = fields.Float(required=True)
    passages = fields.List(fields.Nested(AnswerPassageSchema), required=True)
    did_you_mean = fields.String(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "The question respelt with words the articles use, if any differ."
        },
    )

    @post_load
    def _make(self, data, **kwargs):
        return Answers(**data)


class SourceInfoSchema(ResponseSchema):
    name = fields.String(required=True)
    title = fields.String(required=True)
    passages = fields.Integer(required=True)
    publisher = fields.String(allow_none=True)
    date = fields.String(allow_none=True)
    url = fields.String(allow_none=True, metadata={"description": "Original article, if known."})
    sha256 = fields.String(
        allow_none=True, metadata={"description": "SHA-256 of the text's UTF-8 bytes (version)."}
    )

    @post_load
    def _make(self, data, **kwargs):
        return SourceInfo(**data)


class SourceListSchema(ResponseSchema):
    """200 body of /api/v1/sources."""

    sources = fields.List(fields.Nested(SourceInfoSchema), required=True)


class SourceDocumentSchema(SourceInfoSchema):
    """200 body of /api/v1/sources/<name>: metadata and the full text."""

    text = fields.String(required=True)

    @post_load
    def _make(self, data, **kwargs):
        return SourceDocument(**data)


_SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="Not a SHA-256 in lower-case hex.")
# Longer than any name the corpus reader accepts: a longer one is simply unknown.
SOURCE_NAME_MAX_CHARS = 1024


class SourceQuerySchema(Schema):
    """Query string of GET /api/v1/sources/<name>."""

    version = fields.String(
        validate=_SHA256,
        metadata={"description": "The text as a citation with this `sha256` indexed it."},
    )


class VerifyRequestSchema(Schema):
    """Body of POST /api/v1/citations/verify: the parts of a citation that pin it."""

    source = fields.String(
        required=True, validate=validate.Length(min=1, max=SOURCE_NAME_MAX_CHARS)
    )
    start = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=2**31 - 1)
    )
    end = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=2**31 - 1))
    sha256 = fields.String(required=True, validate=_SHA256)

    @validates_schema
    def _span(self, data, **kwargs):
        if data["end"] < data["start"]:
            raise ValidationError("Must not be before start.", "end")


class VerifiedSchema(ResponseSchema):
    """200 body of POST /api/v1/citations/verify."""

    status = fields.String(
        required=True,
        validate=validate.OneOf(["holds", "moved", "changed", "gone", "unknown_version"]),
        metadata={
            "description": "holds: the same words at the same offsets; moved: the same words "
            "elsewhere; changed: close words (reworded); gone: nothing close, or the source "
            "was removed; unknown_version: the cited version is no longer kept."
        },
    )
    quoted = fields.String(allow_none=True, metadata={"description": "The cited words."})
    source = fields.String(required=True)
    sha256 = fields.String(allow_none=True, metadata={"description": "The current version."})
    start = fields.Integer(allow_none=True, metadata={"description": "Where they stand now."})
    end = fields.Integer(allow_none=True)
    text = fields.String(allow_none=True, metadata={"description": "The current words there."})
    url = fields.String(allow_none=True, metadata={"description": "Source page at that span."})

    @post_load
    def _make(self, data, **kwargs):
        return Verification(**data)


class HealthSchema(ResponseSchema):
    """Body of /healthz."""

    status = fields.String(required=True)


class ReadySchema(ResponseSchema):
    """Body of /readyz."""

    status = fields.String(required=True, metadata={"description": "ready or unavailable"})
    generation = fields.String(allow_none=True)
    passages = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)


class ErrorDetailSchema(ResponseSchema):
    status = fields.Integer(required=True)
    message = fields.String(required=True)
    # Not named `fields`: that attribute belongs to marshmallow's Schema.
    field_errors = fields.Dict(
        data_key="fields", metadata={"description": "Messages per invalid field (422 only)."}
    )


class ErrorSchema(ResponseSchema):
    """Body of every error under /api."""

    error = fields.Nested(ErrorDetailSchema, required=True)

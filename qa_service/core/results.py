"""The records a question produces, shared by the domain, the client and the CLI.

Plain dataclasses with no heavy imports, so the HTTP client can build the same
types from JSON that the local search returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Span:
    """A [start, end) range of characters in a source file."""

    start: int
    end: int


@dataclass(frozen=True)
class AnswerSpan:
    """The words inside a passage that best answer the question."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Citation:
    """Where a passage stands in its source: character, byte and line ranges."""

    source: str
    title: str
    start: int
    end: int
    byte_start: int
    byte_end: int
    line_start: int
    line_end: int
    # SHA-256 of the exact source text the offsets index (its UTF-8 bytes): the version cited.
    sha256: str | None = None
    # Link to the source page at the cited span; only the web layer knows it.
    url: str | None = None


@dataclass(frozen=True)
class Conflict:
    """Another source states a value of the same fact differently."""

    kind: str  # "date" or "amount"
    value: str  # as this passage states it
    other_value: str  # as the other source states it
    citation: Citation


@dataclass(frozen=True)
class AnswerPassage:
    """One ranked passage returned for a question."""

    id: str
    rank: int
    score: float
    text: str
    answer: AnswerSpan
    highlights: list[Span]
    citation: Citation
    # Passages in other sources that state the same fact (copies folded in here).
    corroborated_by: list[Citation] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    # The sentence before the passage in its source (so "both cases" has a referent),
    # quoted exactly; None at the start of the source.
    context_before: AnswerSpan | None = None


@dataclass(frozen=True)
class Answers:
    """Everything returned for one question."""

    question: str
    answerable: bool
    took_ms: float
    passages: list[AnswerPassage] = field(default_factory=list)
    # The question with unknown words replaced by close words of the articles.
    did_you_mean: str | None = None


@dataclass(frozen=True)
class Verification:
    """What became of a citation's words in the current version of its source."""

    status: str  # holds, moved, changed, gone or unknown_version
    source: str
    quoted: str | None = None  # the cited words, from the version cited
    sha256: str | None = None  # the current version
    start: int | None = None  # where the words (or close ones) stand now
    end: int | None = None
    text: str | None = None  # the current words there
    url: str | None = None


@dataclass(frozen=True)
class SourceInfo:
    """An indexed article: its name, title, metadata and passage count."""

    name: str
    title: str
    passages: int
    publisher: str | None = None
    date: str | None = None
    url: str | None = None
    # SHA-256 of the text's UTF-8 bytes: which version of the article this is.
    sha256: str | None = None


@dataclass(frozen=True)
class SourceDocument(SourceInfo):
    """An indexed article with its full text, exactly as the citations index it."""

    text: str = ""


def with_citation_urls(answers: Answers, url: Callable[[Citation], str | None]) -> Answers:
    """The same answers with every citation's `url` (passage, corroboration, conflict) set."""

    def linked(citation: Citation) -> Citation:
        return replace(citation, url=url(citation))

    passages = [
        replace(
            passage,
            citation=linked(passage.citation),
            corroborated_by=[linked(citation) for citation in passage.corroborated_by],
            conflicts=[
                replace(conflict, citation=linked(conflict.citation))
                for conflict in passage.conflicts
            ],
        )
        for passage in answers.passages
    ]
    return replace(answers, passages=passages)


@dataclass(frozen=True)
class WriteStatus:
    """A write to the articles over the API, and how it stands: "indexing", "done" (every
    answer comes from it) or "failed" (the articles are as they were before it)."""

    id: str
    action: str  # "add", "replace" or "delete"
    source: str
    state: str
    # The generation it was indexed in (done).
    generation: str | None = None
    # What is now indexed of the source (done, unless deleted).
    indexed: SourceInfo | None = None
    # Why it failed, in the JSON error shape's fields: {"status", "message"}.
    error: dict | None = None

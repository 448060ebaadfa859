"""The HTML pages: the search form with results, and the source articles."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import groupby, pairwise
from urllib.parse import urlencode

from flask import Blueprint, abort, render_template, request, url_for
from marshmallow import ValidationError

from qa_service.core.citation_formats import FORMATS, Reference, line_range, reader_date
from qa_service.core.results import (
    AnswerPassage,
    Answers,
    Citation,
    Conflict,
    SourceDocument,
    Span,
)
from qa_service.core.sentences import split_sentences
from qa_service.retrieval.store import PassageStore

from .home import PLACEHOLDER, PUBLISHERS_SHOWN, home_page
from .openapi import document, media_content
from .schemas import K_DEFAULT, QUESTION_MAX_CHARS, AnswersSchema, AskQuerySchema
from .serving import (
    cached_answers,
    current_generation,
    source_url,
    source_version,
)

_answers = AnswersSchema()

blueprint = Blueprint("web", __name__)
blueprint.add_app_template_filter(source_url)
blueprint.add_app_template_filter(reader_date)
blueprint.add_app_template_global(line_range)
_ask_query = AskQuerySchema()
_HTML = {
    "200": media_content("text/html", "HTML page"),
    "default": media_content("text/html", "HTML error page"),
}
# After a highlighted word, an apostrophe and one of these make another word: "won't" is not "won".
_CONTRACTION = re.compile(r"['’](?:t|ll|re|ve|d|m)\b", re.IGNORECASE)
_WORD_CHAR = re.compile(r"\w")


@dataclass(frozen=True)
class Segment:
    """A piece of passage text, marked when it matches a question term."""

    text: str
    matched: bool


@dataclass(frozen=True)
class CitationView:
    """A citation as the page shows it: a link to the span, the article's metadata, its copies."""

    reference: Reference
    href: str  # the source page at the span, carrying the question for the way back

    @cached_property
    def copies(self) -> dict[str, str]:
        """Format name -> the text its copy button copies (made only for citations shown so)."""
        return {name: write(self.reference) for name, write in FORMATS.items()}


@dataclass(frozen=True)
class ResultView:
    """What the results page shows for one passage."""

    passage: AnswerPassage
    # Runs of segments, each flagged as inside the answer span or not.
    runs: list[tuple[bool, list[Segment]]]
    citation: CitationView
    corroborations: list[CitationView]
    conflicts: list[tuple[Conflict, CitationView]]


@dataclass(frozen=True)
class AnswerView:
    """The answer box: the best answer span inside its sentence, cited, and who else reports it."""

    before: str
    answer: str
    after: str
    citation: CitationView
    also_reported_by: list[CitationView]  # one per other source


@blueprint.route("/")
@document(get={"summary": "Search page (HTML)", "responses": _HTML})
def search_page():
    """The question form and, when the URL carries a question, its results."""
    q = request.args.get("q", "")
    context = {
        "q": q,
        "k": request.args.get("k", K_DEFAULT),
        "max_chars": QUESTION_MAX_CHARS,
        "placeholder": PLACEHOLDER,
    }
    if "q" not in request.args:
        return render_template(
            "search.html", home=home_page(), publishers_shown=PUBLISHERS_SHOWN, **context
        )
    try:
        params = _ask_query.load(
            {key: request.args[key] for key in ("q", "k") if key in request.args}
        )
    except ValidationError as exc:
        return render_template("search.html", errors=_page_errors(q, exc), **context), 422
    generation = current_generation()
    answers = _answers.load(cached_answers(generation, params["question"], params["k"]))
    cite = _Citer(generation, q, params["k"])
    results = [
        ResultView(
            passage,
            mark_runs(passage, with_answer=answers.answerable),
            cite(passage.citation),
            [cite(other) for other in passage.corroborated_by],
            [(conflict, cite(conflict.citation)) for conflict in passage.conflicts],
        )
        for passage in answers.passages
    ]
    answer = _answer_view(answers, results, cite)
    return render_template(
        "search.html", answers=answers, answer=answer, results=results, **context
    )


def _page_errors(q: str, exc: ValidationError) -> list[str]:
    """What to tell a reader about a question the form cannot take."""
    if not q.strip():
        return ["Type a question to search the articles."]
    if len(q.strip()) > QUESTION_MAX_CHARS:
        return [
            f"Questions can be at most {QUESTION_MAX_CHARS} characters; "
            f"this one has {len(q.strip())}. Try a shorter question."
        ]
    return [
        f"{field}: {message}" for field, messages in exc.messages.items() for message in messages
    ]


class _Citer:
    """Makes the CitationViews of one results page, reading each source once."""

    def __init__(self, generation: PassageStore, q: str, k: int):
        self.sources = generation.sources
        self.found: dict[str, SourceDocument | None] = {}
        self.question = urlencode({"q": q, "k": k})

    def __call__(self, citation: Citation, quote: str | None = None) -> CitationView:
        """The view of `citation`, quoting `quote` (default: the words it cites)."""
        if citation.source not in self.found:
            self.found[citation.source] = self.sources.get(citation.source)
        source = self.found[citation.source]
        if quote is None:
            quote = source.text[citation.start : citation.end] if source else ""
        # Brackets percent-encoded: some Markdown renderers end a link at the first ")".
        url = source_url(citation, external=True).replace("(", "%28").replace(")", "%29")
        reference = Reference(
            quote=quote,
            title=citation.title or citation.source,
            source=citation.source,
            start=citation.start,
            end=citation.end,
            line_start=citation.line_start,
            line_end=citation.line_end,
            url=url,
            publisher=source.publisher if source else None,
            date=source.date if source else None,
        )
        path, _, fragment = source_url(citation).partition("#")
        return CitationView(reference, href=f"{path}&{self.question}#{fragment}")


def _answer_view(answers: Answers, results: list[ResultView], cite: _Citer) -> AnswerView | None:
    """The top passage's answer span in its sentence, when the question is answered."""
    if not answers.answerable or not answers.passages:
        return None
    top = answers.passages[0]
    base, text = top.citation.start, top.text
    start, end = top.answer.start - base, top.answer.end - base
    first, last = answer_sentence(text, start, end)
    citation = replace(
        top.citation,
        start=top.answer.start,
        end=top.answer.end,
        byte_start=top.citation.byte_start + len(text[:start].encode()),
        byte_end=top.citation.byte_start + len(text[:end].encode()),
        line_start=top.citation.line_start + text.count("\n", 0, start),
        line_end=top.citation.line_start + text.count("\n", 0, max(start, end - 1)),
    )
    others: dict[str, CitationView] = {}
    for other in results[0].corroborations:
        others.setdefault(other.reference.source, other)
    return AnswerView(
        before=text[first:start],
        answer=text[start:end],
        after=text[end:last],
        citation=cite(citation, top.answer.text),
        also_reported_by=list(others.values()),
    )


def answer_sentence(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence (or run of sentences) of `text` that holds text[start:end]."""
    overlapping = [(s, e) for s, e in split_sentences(text, 0, len(text)) if s < end and start < e]
    if not overlapping:
        return start, end
    return min(overlapping[0][0], start), max(overlapping[-1][1], end)


@blueprint.route("/sources")
@document(get={"summary": "List of sources (HTML)", "responses": _HTML})
def source_list():
    """Every indexed article, linked to its page."""
    return render_template("sources.html", sources=list(current_generation().sources.values()))


@blueprint.route("/sources/<path:name>")
@document(
    get={"summary": "One source article (HTML), optionally with a cited span", "responses": _HTML}
)
def source(name: str):
    """The whole article, with the span `start`..`end` highlighted when given.

    `q` and `k`, when given, are the question whose results linked here: the page
    links back to them.
    """
    current = found = current_generation().sources.get(name)
    version = request.args.get("version")
    if version and (current is None or version != current.sha256):
        found = source_version(version)
        if found is None or found.name != name:
            abort(404, f"That version of {name!r} is no longer kept.")
    if found is None:
        abort(404, f"There is no source named {name!r}.")
    text = found.text
    start = request.args.get("start", type=int)
    end = request.args.get("end", type=int)
    if start is None or end is None:
        parts = (text, "", "")
    elif 0 <= start < end <= len(text):
        parts = (text[:start], text[start:end], text[end:])
    else:
        abort(400, f"The span {start}-{end} is not inside this source (0-{len(text)}).")
    q = request.args.get("q", "").strip()
    back = url_for("web.search_page", q=q, k=request.args.get("k")) if q else None
    return render_template(
        "source.html",
        source=found,
        parts=parts,
        start=start,
        end=end,
        current=current,
        q=q,
        back=back,
    )


def mark_runs(
    passage: AnswerPassage, *, with_answer: bool = True
) -> list[tuple[bool, list[Segment]]]:
    """Cut a passage into segments at highlight and answer edges, grouped by answer.

    Without `with_answer` (a question the articles do not answer) no run is the answer.
    """
    base, text = passage.citation.start, passage.text
    highlights = [(span.start - base, span.end - base) for span in whole_words(passage)]
    answer = (passage.answer.start - base, passage.answer.end - base) if with_answer else (0, 0)
    cuts = {0, len(text), *answer, *(edge for span in highlights for edge in span)}
    pieces = []
    for start, end in pairwise(sorted(cut for cut in cuts if 0 <= cut <= len(text))):
        matched = any(a <= start and end <= b for a, b in highlights)
        in_answer = answer[0] <= start and end <= answer[1] and answer[0] < answer[1]
        pieces.append((in_answer, Segment(text[start:end], matched)))
    return [
        (in_answer, [segment for _, segment in run])
        for in_answer, run in groupby(pieces, key=lambda piece: piece[0])
    ]


def whole_words(passage: AnswerPassage) -> list[Span]:
    """The passage's highlights that are whole words as a reader sees them.

    The analyser splits words at apostrophes, so the question's "won" matches the
    "won" of "won't": such a piece of another word is not marked. A possessive
    ("LinkedIn's") is still the word.
    """
    base, text = passage.citation.start, passage.text
    kept = []
    for span in passage.highlights:
        start, end = span.start - base, span.end - base
        if start > 0 and _WORD_CHAR.match(text, start - 1):
            continue
        if end < len(text) and _WORD_CHAR.match(text, end):
            continue
        if _CONTRACTION.match(text, end) or _is_contraction_ending(text, start, end):
            continue
        kept.append(span)
    return kept


def _is_contraction_ending(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is the "t" of "won't" (or "ll", "re", ...) after a word."""
    return (
        start >= 2
        and text[start - 1] in "'’"
        and _WORD_CHAR.match(text, start - 2) is not None
        and _CONTRACTION.fullmatch(text, start - 1, end) is not None
    )

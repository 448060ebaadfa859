"""The HTML pages: the search form with results, and the source articles."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby, pairwise

from flask import Blueprint, abort, render_template, request
from marshmallow import ValidationError

from . import search
from .openapi import document, media_content
from .results import AnswerPassage
from .schemas import K_DEFAULT, QUESTION_MAX_CHARS, AskQuerySchema
from .serving import current_generation, source_url, source_version

blueprint = Blueprint("web", __name__)
blueprint.add_app_template_filter(source_url)
_ask_query = AskQuerySchema()
_HTML = {
    "200": media_content("text/html", "HTML page"),
    "default": media_content("text/html", "HTML error page"),
}


@dataclass(frozen=True)
class Segment:
    """A piece of passage text, marked when it matches a question term."""

    text: str
    matched: bool


@dataclass(frozen=True)
class ResultView:
    """What the results page shows for one passage."""

    passage: AnswerPassage
    # Runs of segments, each flagged as inside the answer span or not.
    runs: list[tuple[bool, list[Segment]]]


@blueprint.route("/")
@document(get={"summary": "Search page (HTML)", "responses": _HTML})
def search_page():
    """The question form and, when the URL carries a question, its results."""
    q = request.args.get("q", "")
    context = {"q": q, "k": request.args.get("k", K_DEFAULT), "max_chars": QUESTION_MAX_CHARS}
    if "q" not in request.args:
        return render_template("search.html", **context)
    try:
        params = _ask_query.load(
            {key: request.args[key] for key in ("q", "k") if key in request.args}
        )
    except ValidationError as exc:
        return render_template("search.html", errors=_page_errors(q, exc), **context), 422
    answers = search.ask(current_generation(), params["question"], k=params["k"])
    results = [ResultView(passage, mark_runs(passage)) for passage in answers.passages]
    return render_template("search.html", answers=answers, results=results, **context)


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


@blueprint.app_template_filter("plain_citation")
def plain_citation(passage: AnswerPassage) -> str:
    """The citation as plain text, for copying into notes or a document.

    Without its link: the page's script adds that (data-citation-url), made
    absolute by the browser from the address the reader used.
    """
    citation = passage.citation
    lines = f"lines {citation.line_start}–{citation.line_end}"
    return (
        f"“{passage.text}” — {citation.title}, {citation.source}, "
        f"characters {citation.start}–{citation.end}, {lines}."
    )


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
    """The whole article, with the span `start`..`end` highlighted when given."""
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
    return render_template(
        "source.html", source=found, parts=parts, start=start, end=end, current=current
    )


def mark_runs(passage: AnswerPassage) -> list[tuple[bool, list[Segment]]]:
    """Cut a passage into segments at highlight and answer edges, grouped by answer."""
    base, text = passage.citation.start, passage.text
    highlights = [(span.start - base, span.end - base) for span in passage.highlights]
    answer = (passage.answer.start - base, passage.answer.end - base)
    cuts = {0, len(text), *answer, *(edge for span in highlights for edge in span)}
    pieces = []
    for start, end in pairwise(sorted(cut for cut in cuts if 0 <= cut <= len(text))):
        matched = any(a <= start and end <= b for a, b in highlights)
        in_answer = answer[0] <= start and end <= answer[1]
        pieces.append((in_answer, Segment(text[start:end], matched)))
    return [
        (in_answer, [segment for _, segment in run])
        for in_answer, run in groupby(pieces, key=lambda piece: piece[0])
    ]

"""What the home page tells a first-time reader: what the articles are, and what to ask."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from qa_service.core.citation_formats import date_parts, reader_date
from qa_service.core.corpus import read_about
from qa_service.core.results import SourceInfo
from qa_service.retrieval import overview
from qa_service.retrieval.store import IndexUnavailable

from .serving import current_generation, log_index_unavailable

# Publishers the home page names before it says "and N more".
PUBLISHERS_SHOWN = 6
# Shown in an empty question box when there is no example to show instead.
PLACEHOLDER = "Ask a question about the articles"


@dataclass(frozen=True)
class CorpusSummary:
    """What the home page says the articles are: how many, from whom, from when."""

    sources: int
    publishers: list[str]  # most articles first
    without_publisher: int
    first_date: str | None
    last_date: str | None
    without_date: int  # no date, or one that is not ISO 8601


@dataclass(frozen=True)
class HomePage:
    """The home page's orientation: the summary, one line on the subject, examples."""

    corpus: CorpusSummary | None  # None without an index
    about: str | None
    examples: list[str]

    @property
    def placeholder(self) -> str:
        """What the empty question box suggests: the first example, when there is one."""
        return self.examples[0] if self.examples else PLACEHOLDER


def home_page() -> HomePage:
    """What the home page shows, made once per worker and generation.

    In order of preference: the settings (QA_EXAMPLE_QUESTIONS), the folder's
    about.toml, what the articles themselves say (retrieval.overview).
    """
    configured = example_questions(current_app.config["EXAMPLE_QUESTIONS"])
    folder = read_about(Path(current_app.config["SEEDS_DIR"]))
    examples = configured or list(folder.examples)
    try:
        generation = current_generation()
    except IndexUnavailable as exc:
        # The search form still works for the reader to try when the index is away.
        log_index_unavailable(exc)
        return HomePage(None, folder.about, examples)

    def texts() -> list[str]:  # read once per generation, for the about line and examples
        return _per_generation(generation, "texts", overview.article_texts, generation)

    return HomePage(
        _per_generation(generation, "summary", summarize_corpus, generation.sources.values()),
        folder.about or _per_generation(generation, "about", lambda: overview.about_line(texts())),
        examples
        or _per_generation(
            generation, "examples", lambda: overview.example_questions(generation, texts())
        ),
    )


def _per_generation(generation, part: str, make, *arguments):
    """A part of the page made once per worker and generation (which never changes under
    its name): reading every source is dear on PostgreSQL (their texts come along), and
    drawing examples asks a few questions."""
    cached = current_app.extensions.get("qa_home_page")
    if cached is None or cached[0] != generation.info.name:
        cached = (generation.info.name, {})
        current_app.extensions["qa_home_page"] = cached
    if part not in cached[1]:
        cached[1][part] = make(*arguments)
    return cached[1][part]


def example_questions(setting: str | Iterable[str]) -> list[str]:
    """The configured example questions ("a?|b?" or a list), blanks left out."""
    questions = setting.split("|") if isinstance(setting, str) else setting
    return [question.strip() for question in questions if question.strip()]


def summarize_corpus(sources: Iterable[SourceInfo]) -> CorpusSummary:
    """How many articles, their publishers by count, and the span of their dates."""
    sources = list(sources)
    publishers = Counter(source.publisher for source in sources if source.publisher)
    dated = sorted(
        (parts, source.date) for source in sources if (parts := date_parts(source.date)) is not None
    )
    return CorpusSummary(
        sources=len(sources),
        publishers=[name for name, _ in sorted(publishers.items(), key=lambda p: (-p[1], p[0]))],
        without_publisher=sum(not source.publisher for source in sources),
        first_date=reader_date(dated[0][1]) if dated else None,
        last_date=reader_date(dated[-1][1]) if dated else None,
        without_date=len(sources) - len(dated),
    )

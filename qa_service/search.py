"""Answer a question from an index generation: query, retrieve, rank, cite."""

from __future__ import annotations

import time
from collections.abc import Sequence

from whoosh.analysis import STOP_WORDS
from whoosh.query import Or, Term

from .answers import best_answer, term_spans
from .index import IndexGeneration, make_analyzer
from .results import AnswerPassage, Answers, Citation

# Words that shape a question but say nothing about its subject.
QUESTION_WORDS = frozenset(
    """what which who whom whose when where why how whether does do did doing done
    was were been being has had having is are am there their they them it its any
    some about much many tell please would could should shall might must i me my""".split()
)
QUERY_ANALYZER = make_analyzer(STOP_WORDS | QUESTION_WORDS)


def query_terms(question: str) -> list[str]:
    """The distinct analysed terms of a question, in order; query syntax is plain text."""
    return list(dict.fromkeys(token.text for token in QUERY_ANALYZER(question)))


def ask(
    generation: IndexGeneration,
    question: str,
    *,
    k: int = 5,
    sources: Sequence[str] | None = None,
) -> Answers:
    """Rank the passages that answer `question` and cite each one."""
    started = time.perf_counter()
    terms = query_terms(question)
    passages: list[AnswerPassage] = []
    if terms:
        query = Or([Term("text", term) for term in terms])
        allowed = Or([Term("source", name) for name in sources]) if sources else None
        with generation.searcher() as searcher:
            hits = searcher.search(query, limit=k, filter=allowed)

            def weight(term: str) -> float:
                return searcher.idf("text", term)

            for rank, hit in enumerate(hits, start=1):
                passages.append(_answer_passage(generation, hit, rank, terms, weight))
    took_ms = round((time.perf_counter() - started) * 1000, 3)
    return Answers(question=question, answerable=bool(passages), took_ms=took_ms, passages=passages)


def _answer_passage(generation, hit, rank, terms, weight) -> AnswerPassage:
    """Build the cited result for one Whoosh hit."""
    location = hit["location"]
    source = generation.sources[hit["source"]]
    matches = term_spans(hit["text"], location["start"], terms)
    return AnswerPassage(
        id=hit["id"],
        rank=rank,
        score=round(hit.score, 4),
        text=hit["text"],
        answer=best_answer(source.text, location["sentences"], matches, weight),
        highlights=[span for _, span in matches],
        citation=Citation(
            source=source.name,
            title=source.title,
            start=location["start"],
            end=location["end"],
            byte_start=location["byte_start"],
            byte_end=location["byte_end"],
            line_start=location["line_start"],
            line_end=location["line_end"],
        ),
    )

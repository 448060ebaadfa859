"""From a retrieved passage to what the reader sees: answer span and highlights."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .index import ANALYZER
from .results import AnswerSpan, Span


def term_spans(text: str, offset: int, terms: Iterable[str]) -> list[tuple[str, Span]]:
    """Each occurrence of an analysed term in `text`, as (term, span) in source offsets."""
    wanted = set(terms)
    # Whoosh reuses one token object while analysing: copy what we need at once.
    return [
        (token.text, Span(offset + token.startchar, offset + token.endchar))
        for token in ANALYZER(text, chars=True)
        if token.text in wanted
    ]


def best_answer(
    source_text: str,
    sentences: Iterable[tuple[int, int]],
    matches: list[tuple[str, Span]],
    weight: Callable[[str], float],
) -> AnswerSpan:
    """The sentence holding the most weight of distinct matched terms (earliest on ties)."""
    best, best_score = None, -1.0
    for start, end in sentences:
        found = {term for term, span in matches if start <= span.start and span.end <= end}
        score = sum(weight(term) for term in found)
        if score > best_score:
            best, best_score = (start, end), score
    start, end = best
    return AnswerSpan(text=source_text[start:end], start=start, end=end)

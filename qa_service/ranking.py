"""Second-stage ranking and answer extraction: pure functions over analysed text.

The first stage (Whoosh BM25F in `search.py`) finds candidate passages. Here
each candidate is scored on what BM25 alone does not see:

- coverage: how much of the question's information (idf mass) the passage holds,
  so one frequent word repeated cannot outrank a passage that matches the rest;
- answer type: "how many" wants a number, "when" a date, "who" a name; a passage
  holding such a thing (other than the question's own words) is likelier to answer;
- context: a passage right after a strong match often carries on its subject
  ("Following this allegation, a further lawsuit…").

The same signals pick the answer span inside the passage: the shortest run of
clauses holding the question's terms and the expected kind of answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

# Weights of the second stage. BM25 and coverage are both in [0, 1]; the
# other signals are bonuses on top. Chosen as round values, not fitted.
WEIGHT_BM25 = 1.0
WEIGHT_COVERAGE = 1.0
WEIGHT_ANSWER_TYPE = 1.5
WEIGHT_CONTEXT = 0.0
# Below this share of the question's information in the best passage, the
# articles are taken to hold no answer.
ANSWERABLE_COVERAGE = 0.3


class AnswerType(Enum):
    """The kind of thing a question asks for."""

    QUANTITY = "quantity"
    TIME = "time"
    NAME = "name"
    ANY = "any"


_QUANTITY_WORDS = r"amount|number|share|percentage|proportion|value|worth|cost|price|size|sum|fine"
_TIME_WORDS = r"date|year|month|day|time|period"
_NAME_WORDS = (
    r"company|companies|firm|firms|group|groups|organi[sz]ations?|person|people|court|"
    r"country|countries|city|state|regions?|agency|law|act|plaintiffs?|defendants?"
)
_QUESTION_TYPES = [
    (
        AnswerType.QUANTITY,
        rf"\bhow\s+(many|much|big|large|high|often)\b|\bwhat\s+(\w+\s+){{0,3}}({_QUANTITY_WORDS})\b",
    ),
    (
        AnswerType.TIME,
        rf"\bwhen\b|\bhow\s+long\b|\bwhat\s+(\w+\s+){{0,3}}({_TIME_WORDS})\b|\bsince\s+when\b",
    ),
    (AnswerType.NAME, rf"\bwho(m|se)?\b|\bwhere\b|\bwhich\s+(\w+\s+)?({_NAME_WORDS})\b"),
]

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
ENTITY_PATTERNS = {
    AnswerType.QUANTITY: re.compile(
        r"[$€£]\s?\d[\d,.]*(\s?(million|billion|trillion|thousand|[mbk]n?)\b)?"
        r"|\b\d[\d,.]*\s?(%|percent\b|per\s?cent\b|million\b|billion\b|thousand\b|dollars\b)"
        r"|\b(a|one|two|three|several|hundreds?|thousands?|millions?|billions?)\s+(of\s+)?"
        r"(million|billion|dollars|people|users|members|customers)\b"
        r"|\b\d[\d,.]*\s+[a-z]+",
        re.IGNORECASE,
    ),
    AnswerType.TIME: re.compile(
        rf"\b({_MONTHS})(\s+\d{{1,2}})?(,?\s+\d{{4}})?\b|\b(19|20)\d\d\b|\bsince\b|\b\d+\s+(years?|months?|days?)\b",
        re.IGNORECASE,
    ),
    # Runs of capitalised words (with inner "of", "de", "la"...), e.g. "Open Rights Group".
    AnswerType.NAME: re.compile(
        r"\b[A-Z][\w’'&.-]*(?:\s+(?:(?:of|de|la|du|van|von|and|the)\s+)?[A-Z][\w’'&.-]*)*"
    ),
}


def expected_answer_type(question: str) -> AnswerType:
    """What kind of answer the question wants, from its question words."""
    lowered = question.lower()
    for answer_type, pattern in _QUESTION_TYPES:
        if re.search(pattern, lowered):
            return answer_type
    return AnswerType.ANY


@dataclass(frozen=True)
class Token:
    """An analysed term and where it stands in the source."""

    term: str
    start: int
    end: int


def answer_entities(
    text: str, offset: int, answer_type: AnswerType, question_spans: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Spans (source offsets) in `text` of things of `answer_type`.

    A name made of the question's own words ("LinkedIn" for "Who runs
    LinkedIn?") is not an answer to it.
    """
    if answer_type is AnswerType.ANY:
        return []
    found = []
    for match in ENTITY_PATTERNS[answer_type].finditer(text):
        start, end = match.span()
        if answer_type is AnswerType.NAME:
            if _starts_sentence(text, start):
                # Any sentence starts with a capital: only the rest of the run counts.
                rest = match.group().split(None, 1)
                if len(rest) < 2:
                    continue
                start = end - len(rest[1])
            if any(offset + start <= s and e <= offset + end for s, e in question_spans):
                continue
        found.append((offset + start, offset + end))
    return found


def _starts_sentence(text: str, position: int) -> bool:
    before = text[:position].rstrip(" \u00a0\"“‘'(")
    return not before or before[-1] in ".!?:\n"


def entity_rarity(
    entities: list[tuple[int, int]],
    tokens: Iterable[Token],
    idf: Callable[[str], float],
    top: float,
) -> float:
    """How specific the best answer entity is: the idf of its rarest word, over `top`.

    "Microsoft" or "LinkedIn" answer nothing in a corpus about them; a name or
    number found in few passages is likely the fact asked for.
    """
    best = 0.0
    for start, end in entities:
        inside = [idf(t.term) for t in tokens if start <= t.start and t.end <= end]
        best = max(best, max(inside, default=top / 2) / top)
    return best


def coverage(matched: Iterable[str], weights: Mapping[str, float]) -> float:
    """Share of the question's idf mass that the matched terms hold."""
    total = sum(weights.values())
    return sum(weights[term] for term in set(matched)) / total if total else 0.0


def combine(bm25: float, covered: float, typed: float, context: float) -> float:
    """The second-stage score of a passage from its normalised signals."""
    return (
        WEIGHT_BM25 * bm25
        + WEIGHT_COVERAGE * covered
        + WEIGHT_ANSWER_TYPE * typed
        + WEIGHT_CONTEXT * context
    )


_CLAUSE_BREAK = re.compile(r"[,;:()]\s*|\s+[–—-]\s+")


def clause_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut text[start:end] into clauses at commas, semicolons, colons, brackets and dashes."""
    spans, clause_start = [], start
    for match in _CLAUSE_BREAK.finditer(text, start, end):
        if match.start() > clause_start:
            spans.append((clause_start, match.start()))
        clause_start = match.end()
    if clause_start < end:
        spans.append((clause_start, end))
    return spans or [(start, end)]


def best_span(
    text: str,
    sentences: Iterable[tuple[int, int]],
    tokens: list[Token],
    weights: Mapping[str, float],
    entities: list[tuple[int, int]],
    *,
    max_clauses: int = 4,
) -> tuple[int, int]:
    """The shortest run of clauses holding most of the question's terms and an answer entity.

    `text` is the whole source; sentences, tokens and entities are in its offsets.
    """
    best, best_score = None, float("-inf")
    total = sum(weights.values()) or 1.0
    for sentence_start, sentence_end in sentences:
        clauses = clause_spans(text, sentence_start, sentence_end)
        for first in range(len(clauses)):
            for last in range(first, min(first + max_clauses, len(clauses))):
                start, end = clauses[first][0], clauses[last][1]
                matched = {t.term for t in tokens if start <= t.start and t.end <= end}
                has_entity = any(start <= s and e <= end for s, e in entities)
                words = len(text[start:end].split())
                score = (
                    sum(weights.get(term, 0.0) for term in matched) / total
                    + 0.5 * has_entity
                    - 0.01 * words
                )
                if score > best_score:
                    best, best_score = (start, end), score
    return best

"""Second-stage ranking and answer extraction: pure functions over analysed text.

The first stages (`search.py`) find candidate passages by words (Whoosh BM25F)
and by meaning (the nearest sentence embeddings). Each candidate is then scored
by a linear model over its features (`Features`), fitted across question sets
by benchmarks/fit.py; among them, what BM25 alone does not see:

- similarity: the cosine of the question's and the passage's embeddings, and
  of the passages beside it (an answer sits among passages on the same topic);

- coverage: the share of the question's information (its terms' idf) that the
  passage holds, so one word repeated cannot outrank a passage that matches
  the rest of the question;
- answer type: "how many" wants a number, "when" a date, "who" a name. A
  passage holding such a thing, other than the question's own words, likely
  answers; the rarer that thing is in the corpus, the more it says ("Microsoft"
  in a corpus about Microsoft answers nothing, "Alessandro De La Torre" does).

Whether the articles answer at all is one logistic decision over question-level
signals (`AnswerabilitySignals`), fitted the same way.

The same signals choose the answer inside the passage: the shortest run of
clauses holding the question's terms and the kind of thing asked for, in the
sentence closest in meaning to the question.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import NamedTuple

from qa_service.core.layout import is_title_case
from qa_service.core.passages import Token

# Inside a passage: what an answer entity is worth against the question's
# terms, and what each word of the span costs (so the shortest span wins);
# chosen by hand on the first 30 questions.
SPAN_ENTITY_BONUS = 0.5
SPAN_WORD_COST = 0.01
SPAN_MAX_CLAUSES = 4
# How much the closeness in meaning of a sentence to the question counts when
# choosing the answer span: 0.5 gave the best answer F1 on dev2 of 0, 0.5, 1 and 2
# (0 and 1 within 0.02 of it; the held-out questions did not move).
SPAN_SIMILARITY_WEIGHT = 0.5


class AnswerType(Enum):
    """The kind of thing a question asks for."""

    QUANTITY = "quantity"
    TIME = "time"
    NAME = "name"
    ANY = "any"


_SOME_WORDS = r"(?:\w+\s+){0,3}"
_QUESTION_TYPES = [
    (
        AnswerType.QUANTITY,
        r"\bhow\s+(?:many|much|big|large|high|often)\b|\bwhat\s+" + _SOME_WORDS
        + r"(?:amount|number|share|percentage|proportion|value|worth|cost|price|size|sum)\b",
    ),
    (
        AnswerType.TIME,
        r"\bwhen\b|\bhow\s+long\b|\bwhat\s+" + _SOME_WORDS + r"(?:date|year|month|day|time)\b",
    ),
    (
        AnswerType.NAME,
        # "Which X" with X a kind of named thing; "the name of"; "what company".
        r"\bwho(?:m|se)?\b|\bwhere\b|\bname\s+of\b"
        r"|\bwhich\s+(?:\w+\s+)?(?:company|companies|firms?|groups?|organi[sz]ations?|persons?"
        r"|people|courts?|countr(?:y|ies)|cit(?:y|ies)|states?|regions?|agenc(?:y|ies)|laws?|acts?)\b"
        r"|\bwhat\s+(?:company|companies|firms?|organi[sz]ations?|persons?|people|groups?)\b",
    ),
]  # fmt: skip

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_MAGNITUDE = r"(?:hundred|thousand|million|billion|trillion)s?"
# Digits with separators only between them: "1,000" and "26.2", not the comma after "2023,".
_NUMBER = r"\d+(?:[.,]\d+)*"
ENTITY_PATTERNS = {
    # Amounts of money, percentages, and numbers that count something ("175 million
    # users", "87 percent of staff"); a bare number ("18 U.S.C.", "Section 3.2") is a
    # label, and a year is a time.
    AnswerType.QUANTITY: re.compile(
        rf"[$€£]\s?{_NUMBER}(?:\s?{_MAGNITUDE})?"
        rf"|\b{_NUMBER}\s?(?:%|percent\b|per\s?cent\b|{_MAGNITUDE}\b)"
        rf"|\b(?!(?:19|20)\d\d\b){_NUMBER}\s+[a-z]+"
        rf"|\b(?:a|one|several|many|{_MAGNITUDE})\s+(?:of\s+)?{_MAGNITUDE}\b"
    ),
    AnswerType.TIME: re.compile(
        rf"\b{_MONTH}(?:\s+\d{{1,2}})?(?:,?\s+\d{{4}})?\b|\b(?:19|20)\d\d\b"
        r"|\bsince\b|\b\d+\s+(?:years?|months?|weeks?|days?)\b",
        re.IGNORECASE,
    ),
    # Runs of capitalised words, inner particles allowed: "Open Rights Group", "De La Torre".
    # A period only inside a word ("U.S"), so a run never crosses the end of a sentence.
    AnswerType.NAME: re.compile(
        r"\b[A-Z][\w’'&-]*(?:\.[A-Z][\w’'&-]*)*"
        r"(?:\s+(?:(?:of|de|la|du|van|von|and|the)\s+)?[A-Z][\w’'&-]*(?:\.[A-Z][\w’'&-]*)*)*"
    ),
}
# Longer than any name: a Title Case line of more words is a headline.
_NAME_WORDS = 4
# Commas, semicolons, colons and spaced dashes; not the comma in "1,000".
_CLAUSE_BREAK = re.compile(r"(?:[;:]|,(?!\d))\s*|\s+[–—-]\s+")
# Brackets and quotations are never cut: an answer neither opens nor closes inside one.
_ENCLOSED = re.compile(r'\([^()]*\)|\[[^\[\]]*\]|“[^“”]*”|"[^"]*"')
# A rubric label that opens a sentence ("What's Next:", "Update:") is not part of an answer.
_LABEL_WORDS = 4


def expected_answer_type(question: str) -> AnswerType:
    """What kind of answer the question wants, from its question words."""
    lowered = question.lower()
    for answer_type, pattern in _QUESTION_TYPES:
        if re.search(pattern, lowered):
            return answer_type
    return AnswerType.ANY


def answer_entities(
    text: str, offset: int, answer_type: AnswerType, question_spans: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Spans, in source offsets, of the things of `answer_type` in a passage's text.

    A name holding the question's own words ("LinkedIn Corp" for "Who runs
    LinkedIn?") is not an answer to it, nor is the capital that starts a sentence.
    In a headline written in Title Case capitals mark no names.
    """
    if answer_type is AnswerType.ANY:
        return []
    if answer_type is AnswerType.NAME and len(text.split()) > _NAME_WORDS and is_title_case(text):
        return []
    question_spans = list(question_spans)
    found = []
    for match in ENTITY_PATTERNS[answer_type].finditer(text):
        start, end = match.span()
        if answer_type is AnswerType.NAME:
            # A name holding any of the question's words is its subject, not its answer.
            if any(offset + start < e and s < offset + end for s, e in question_spans):
                continue
            if _starts_sentence(text, start):
                rest = match.group().split(None, 1)
                if len(rest) < 2:
                    continue
                start = end - len(rest[1])
        found.append((offset + start, offset + end))
    return found


def _starts_sentence(text: str, position: int) -> bool:
    before = text[:position].rstrip(" \u00a0\"“‘'(")
    return not before or before[-1] in ".!?:\n"


def entity_rarity(
    entities: Iterable[tuple[int, int]],
    words: Sequence[tuple[int, int, float]],
    top_idf: float,
) -> list[float]:
    """How specific each answer entity is: the idf of its rarest word over `top_idf`.

    `words` are the passage's analysed words as (start, end, idf of their term).
    """
    rarities = []
    for start, end in entities:
        inside = [idf for s, e, idf in words if start <= s and e <= end]
        # An entity of stop words or symbols alone counts as middling.
        rarities.append(max(inside, default=top_idf / 2) / top_idf)
    return rarities


def coverage(matched: Iterable[str], weights: Mapping[str, float]) -> float:
    """Share of the question's idf mass that the matched terms hold."""
    total = sum(weights.values())
    matched = set(matched)
    # Summed in the question's order, not the set's: a set of strings is ordered by their
    # hashes, which differ between processes, and so would the sum's last bits and the
    # order of candidates (or answer spans) that tie but for them.
    return (
        sum(weight for term, weight in weights.items() if term in matched) / total if total else 0.0
    )


class Features(NamedTuple):
    """What the second stage knows about one candidate passage for one question."""

    bm25: float  # BM25 over the best BM25 hit's, 0 when not a BM25 hit
    coverage: float  # share of the question's idf mass in the passage
    answer_type: float  # rarity of the best entity of the expected kind, 0 when none
    similarity: float  # cosine of the question's and the passage's embeddings
    neighbour_similarity: float  # the same for the nearer of the passages beside it
    missing_rarest: float  # idf of the rarest question term the passage lacks, over the top idf
    heading: float  # 1 for a title, heading or byline
    log_length: float  # natural log of the passage's characters


class AnswerabilitySignals(NamedTuple):
    """What decides whether the articles answer a question at all."""

    typed: float  # 1 when the question asks for a quantity, time or name
    best_similarity: float
    best_coverage: float
    top_similarity: float  # of the best-ranked passage
    top_coverage: float
    top_answer_type: float
    top_missing_rarest: float


def relevance(features: Features) -> float:
    """The second-stage score of a passage: a linear model fitted across question sets."""
    return sum(map(operator.mul, RELEVANCE_WEIGHTS, features))


def answerability_signals(
    answer_type: AnswerType, found: Sequence[Features], scores: Sequence[float]
) -> AnswerabilitySignals:
    """The question-level signals of answerability from its candidates and their scores."""
    top = found[max(range(len(found)), key=scores.__getitem__)]
    return AnswerabilitySignals(
        typed=float(answer_type is not AnswerType.ANY),
        best_similarity=max(f.similarity for f in found),
        best_coverage=max(f.coverage for f in found),
        top_similarity=top.similarity,
        top_coverage=top.coverage,
        top_answer_type=top.answer_type,
        top_missing_rarest=top.missing_rarest,
    )


def answerable(answer_type: AnswerType, found: Sequence[Features], scores: Sequence[float]) -> bool:
    """Whether the candidates likely hold an answer: a logistic model fitted across sets."""
    if not found:
        return False
    signals = answerability_signals(answer_type, found, scores)
    logit = ANSWERABILITY_INTERCEPT + sum(
        w * x for w, x in zip(ANSWERABILITY_COEFFICIENTS, signals, strict=True)
    )
    return 1 / (1 + math.exp(-logit)) >= ANSWERABILITY_THRESHOLD


# Fitted by benchmarks/fit.py on dev2 and the Debian FAQ (see its output for the folds).
RELEVANCE_WEIGHTS = Features(
    bm25=2.0872,
    coverage=1.0600,
    answer_type=1.1145,
    similarity=4.6600,
    neighbour_similarity=2.9694,
    missing_rarest=-0.1113,
    heading=0.2996,
    log_length=0.0743,
)
ANSWERABILITY_COEFFICIENTS = AnswerabilitySignals(
    typed=-0.7187,
    best_similarity=2.0196,
    best_coverage=1.4595,
    top_similarity=2.4082,
    top_coverage=1.0671,
    top_answer_type=0.1452,
    top_missing_rarest=-0.8473,
)
ANSWERABILITY_INTERCEPT = -1.9239
ANSWERABILITY_THRESHOLD = 0.264


def clause_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut text[start:end] into clauses at commas, semicolons, colons and dashes.

    Never inside brackets or quotation marks; a short label before a colon at the
    start is left out.
    """
    enclosed = [m.span() for m in _ENCLOSED.finditer(text, start, end)]
    spans, clause_start = [], start
    for match in _CLAUSE_BREAK.finditer(text, start, end):
        if any(s < match.start() < e for s, e in enclosed):
            continue
        clause_end = match.start()
        while clause_end > clause_start and text[clause_end - 1].isspace():
            clause_end -= 1
        if clause_end > clause_start:
            spans.append((clause_start, clause_end))
        clause_start = match.end()
    if clause_start < end:
        spans.append((clause_start, end))
    if len(spans) > 1 and _is_label(text, *spans[0]):
        spans = spans[1:]
    return _join_short_clauses(text, spans) or [(start, end)]


def _is_label(text: str, start: int, end: int) -> bool:
    """A few words closed by a colon: a rubric, not a statement."""
    return text[end : end + 1] == ":" and len(text[start:end].split()) <= _LABEL_WORDS


def _join_short_clauses(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join a clause of one or two words to the next: it is a list item or an aside
    ("Amazon, Google, and Meta"), not a statement of its own."""
    joined: list[tuple[int, int]] = []
    pending = None
    for start, end in spans:
        if pending is not None:
            start, pending = pending, None
        if len(text[start:end].split()) < 3:
            pending = start
            continue
        joined.append((start, end))
    if pending is not None:
        if joined:
            joined[-1] = (joined[-1][0], spans[-1][1])
        else:
            joined.append((pending, spans[-1][1]))
    return joined


def best_span(
    text: str,
    sentences: Iterable[tuple[int, int]],
    tokens: Sequence[Token],
    weights: Mapping[str, float],
    entities: Sequence[tuple[int, int, float]],
    sentence_similarity: Sequence[float],
) -> tuple[int, int]:
    """The run of clauses, inside one sentence, that best answers the question.

    Scores each run by the share of the question's information it holds, a
    bonus by the rarity of the rarest answer entity in it (`entities` are
    (start, end, rarity) triples), the closeness in meaning of its sentence to
    the question, and a small cost per word. `text` is the whole source;
    sentences, tokens and entities are in its offsets.
    """
    best, best_score = None, float("-inf")
    for (sentence_start, sentence_end), similarity in zip(
        sentences, sentence_similarity, strict=True
    ):
        clauses = clause_spans(text, sentence_start, sentence_end)
        for first in range(len(clauses)):
            for last in range(first, min(first + SPAN_MAX_CLAUSES, len(clauses))):
                start, end = clauses[first][0], clauses[last][1]
                matched = {t.term for t in tokens if start <= t.start and t.end <= end}
                score = (
                    coverage(matched, weights)
                    + SPAN_ENTITY_BONUS
                    * max((r for s, e, r in entities if start <= s and e <= end), default=0.0)
                    - SPAN_WORD_COST * len(text[start:end].split())
                    + SPAN_SIMILARITY_WEIGHT * similarity
                )
                if score > best_score:
                    best, best_score = (start, end), score
    return best

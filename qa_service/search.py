"""Answer a question from an index generation: retrieve, re-rank, extract, cite."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from whoosh.analysis import STOP_WORDS
from whoosh.query import Or, Term

from . import ranking
from .index import ANALYZER, IndexGeneration, make_analyzer
from .passages import Passage
from .ranking import Token
from .results import AnswerPassage, Answers, AnswerSpan, Citation, Span

# Words that shape a question but say nothing about its subject.
QUESTION_WORDS = frozenset(
    """what which who whom whose when where why how whether does do did doing done
    was were been being has had having is are am there their they them it its any
    some about much many tell please would could should shall might must i me my""".split()
)
QUERY_ANALYZER = make_analyzer(STOP_WORDS | QUESTION_WORDS)
# Phrases that only frame the question; the answer type stands for them.
FRAMING = re.compile(
    r"\bhow\s+(?:long|many|much|big|large|often|high)\b"
    r"|\bwhat\s+(?:kind|type|sort)s?\s+of\b"
    r"|\b(?:happen(?:s|ed|ing)?|take\s+place)\b",
    re.IGNORECASE,
)
# First-stage candidates taken from BM25, and how many of the best lend context
# to their neighbours.
CANDIDATES = 50
CONTEXT_SEEDS = 5


def query_terms(question: str) -> list[str]:
    """The distinct analysed terms of a question, in order; query syntax is plain text."""
    content = FRAMING.sub(" ", question)
    return list(dict.fromkeys(token.text for token in QUERY_ANALYZER(content)))


def passage_tokens(passage: Passage) -> list[Token]:
    """The analysed terms of a passage with their source offsets."""
    # Whoosh reuses one token object while analysing: copy what we need at once.
    return [
        Token(token.text, passage.start + token.startchar, passage.start + token.endchar)
        for token in ANALYZER(passage.text, chars=True)
    ]


@dataclass
class _Candidate:
    docnum: int
    passage: Passage
    tokens: list[Token]
    bm25: float = 0.0
    score: float = 0.0
    covered: float = 0.0
    entities: list[tuple[int, int]] | None = None


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
    if not terms:
        return Answers(question, False, _elapsed_ms(started), [])
    answer_type = ranking.expected_answer_type(question)
    allowed = Or([Term("source", name) for name in sources]) if sources else None
    weights = {term: generation.term_idf(term) for term in terms}
    with generation.searcher() as searcher:
        hits = searcher.search(
            Or([Term("text", t) for t in terms]), limit=CANDIDATES, filter=allowed
        )
        bm25 = {hit.docnum: hit.score for hit in hits}
    candidates = _score_candidates(generation, bm25, terms, weights, answer_type, sources)
    ranked = sorted(candidates, key=lambda c: (-c.score, c.docnum))[:k]
    answerable = bool(ranked) and max(c.covered for c in candidates) >= ranking.ANSWERABLE_COVERAGE
    passages = [
        _answer_passage(generation, candidate, rank, terms, weights)
        for rank, candidate in enumerate(ranked, start=1)
    ]
    return Answers(question, answerable, _elapsed_ms(started), passages)


def _score_candidates(generation, bm25, terms, weights, answer_type, sources):
    """Second-stage scores for the BM25 hits and the neighbours of the best ones."""
    top = max(bm25.values(), default=0.0) or 1.0
    normalised = {docnum: value / top for docnum, value in bm25.items()}
    pool = set(bm25)
    top_idf = generation.term_idf("")
    for docnum in sorted(bm25, key=bm25.get, reverse=True)[:CONTEXT_SEEDS]:
        pool.update(generation.neighbours(docnum))
    candidates = []
    for docnum in pool:
        passage = generation.passages[docnum]
        if sources and passage.source not in sources:
            continue
        tokens = passage_tokens(passage)
        question_spans = [(t.start, t.end) for t in tokens if t.term in weights]
        candidate = _Candidate(docnum, passage, tokens, bm25.get(docnum, 0.0))
        candidate.covered = ranking.coverage({t.term for t in tokens} & set(terms), weights)
        candidate.entities = ranking.answer_entities(
            passage.text, passage.start, answer_type, question_spans
        )
        context = max((normalised.get(n, 0.0) for n in generation.neighbours(docnum)), default=0.0)
        typed = ranking.entity_rarity(candidate.entities, tokens, generation.term_idf, top_idf)
        candidate.score = ranking.combine(
            normalised.get(docnum, 0.0), candidate.covered, typed, context
        )
        candidates.append(candidate)
    return candidates


def _answer_passage(generation, candidate: _Candidate, rank, terms, weights) -> AnswerPassage:
    """The cited result for one ranked candidate, with its answer span and highlights."""
    passage = candidate.passage
    source = generation.sources[passage.source]
    matched = [t for t in candidate.tokens if t.term in weights]
    start, end = ranking.best_span(
        source.text, passage.sentences, candidate.tokens, weights, candidate.entities
    )
    return AnswerPassage(
        id=passage.id,
        rank=rank,
        score=round(candidate.score, 4),
        text=passage.text,
        answer=AnswerSpan(text=source.text[start:end], start=start, end=end),
        highlights=[Span(t.start, t.end) for t in matched],
        citation=Citation(
            source=source.name,
            title=source.title,
            start=passage.start,
            end=passage.end,
            byte_start=passage.byte_start,
            byte_end=passage.byte_end,
            line_start=passage.line_start,
            line_end=passage.line_end,
        ),
    )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)

"""Answer a question from an index generation: retrieve, re-rank, extract, cite."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from whoosh.analysis import STOP_WORDS
from whoosh.query import Or, Term

from . import corroboration, ranking
from .index import WORD, IndexGeneration, make_analyzer
from .passages import Passage, Token
from .results import AnswerPassage, Answers, AnswerSpan, Citation, Conflict, Span

# Words that shape a question but say nothing about its subject.
QUESTION_WORDS = frozenset(
    """what which who whom whose when where why how whether does do did doing done
    was were been being has had having is are am there their they them it its any
    some about much many tell please would could should shall might must i me my""".split()
)
QUERY_STOP_WORDS = STOP_WORDS | QUESTION_WORDS
QUERY_ANALYZER = make_analyzer(QUERY_STOP_WORDS)
# Phrases that only frame the question; the answer type stands for them.
FRAMING = re.compile(
    r"\bhow\s+(?:long|many|much|big|large|often|high)\b"
    r"|\bwhat\s+(?:kind|type|sort)s?\s+of\b"
    r"|\b(?:happen(?:s|ed|ing)?|take\s+place)\b",
    re.IGNORECASE,
)
# How many BM25 hits the second stage re-ranks.
CANDIDATES = 50


def respell(generation: IndexGeneration, question: str) -> str | None:
    """The question with words the articles lack replaced by the closest they use, if any.

    Words of four letters or fewer are left alone (names, acronyms), as are
    stop and question words.
    """
    changed = False

    def closest(match: re.Match) -> str:
        nonlocal changed
        word = match.group().lower()
        if len(word) < 5 or word in QUERY_STOP_WORDS:
            return match.group()
        correction = generation.correction(word)
        changed = changed or correction is not None
        return correction or match.group()

    respelt = WORD.sub(closest, question)
    return respelt if changed else None


def query_terms(question: str) -> list[str]:
    """The distinct analysed terms of a question, in order; query syntax is plain text."""
    content = FRAMING.sub(" ", question)
    return list(dict.fromkeys(token.text for token in QUERY_ANALYZER(content)))


@dataclass
class _Candidate:
    """A passage under consideration, with what its scoring found."""

    docnum: int
    passage: Passage
    tokens: tuple[Token, ...]
    covered: float
    entities: list[tuple[int, int]]
    score: float


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
    weights = {term: generation.term_idf(term) for term in terms}
    allowed = Or([Term("source", name) for name in sources]) if sources else None
    did_you_mean = respell(generation, question)
    with generation.searcher() as searcher:
        query = Or([Term("text", term) for term in terms])
        hits = searcher.search(query, limit=CANDIDATES, filter=allowed) if terms else []
        bm25 = {hit.docnum: hit.score for hit in hits}
    answer_type = ranking.expected_answer_type(question)
    best = max(bm25.values(), default=0.0) or 1.0
    candidates = [
        _score(generation, docnum, value / best, weights, answer_type)
        for docnum, value in bm25.items()
    ]
    ranked = _fold_copies(generation, sorted(candidates, key=lambda c: (-c.score, c.docnum)), k)
    answerable = any(c.covered >= ranking.ANSWERABLE_COVERAGE for c in candidates)
    passages = [
        _answer_passage(generation, candidate, rank, weights)
        for rank, candidate in enumerate(ranked, start=1)
    ]
    return Answers(question, answerable, _elapsed_ms(started), passages, did_you_mean)


def _score(generation, docnum, bm25, weights, answer_type) -> _Candidate:
    """Second-stage score of one BM25 hit (`bm25` normalised by the best hit)."""
    passage = generation.passages[docnum]
    tokens = generation.tokens(docnum)
    question_spans = [(t.start, t.end) for t in tokens if t.term in weights]
    covered = ranking.coverage({t.term for t in tokens if t.term in weights}, weights)
    entities = ranking.answer_entities(passage.text, passage.start, answer_type, question_spans)
    typed = ranking.entity_rarity(entities, tokens, generation.term_idf, generation.max_idf)
    score = ranking.combine(bm25, covered, typed)
    return _Candidate(docnum, passage, tokens, covered, entities, score)


def _fold_copies(generation, ranked: list[_Candidate], k: int) -> list[_Candidate]:
    """The best k candidates, leaving out copies of a better one (they are cited with it)."""
    kept: list[_Candidate] = []
    copied: set[int] = set()
    for candidate in ranked:
        if candidate.docnum in copied:
            continue
        kept.append(candidate)
        if len(kept) == k:
            break
        copied.update(link.other for link in generation.links[candidate.docnum] if link.near_copy)
    return kept


def _answer_passage(generation, candidate: _Candidate, rank, weights) -> AnswerPassage:
    """The cited result for one ranked candidate, with its answer span and highlights."""
    passage = candidate.passage
    source = generation.sources[passage.source]
    links = generation.links[candidate.docnum]
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
        citation=_citation(generation, passage),
        corroborated_by=[
            _citation(generation, generation.passages[link.other])
            for link in links
            if link.similarity >= corroboration.SAME_FACT
        ],
        conflicts=_conflicts(generation, links),
    )


def _conflicts(generation, links) -> list[Conflict]:
    """Dates and amounts that passages about the same fact in other sources state differently."""
    return [
        Conflict(kind, value, other_value, _citation(generation, generation.passages[link.other]))
        for link in links
        for kind, value, other_value in link.conflicts
    ]


def _citation(generation, passage: Passage) -> Citation:
    """Where a passage stands in its source."""
    return Citation(
        source=passage.source,
        title=generation.sources[passage.source].title,
        start=passage.start,
        end=passage.end,
        byte_start=passage.byte_start,
        byte_end=passage.byte_end,
        line_start=passage.line_start,
        line_end=passage.line_end,
    )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)

"""Answer a question from an index generation: retrieve, re-rank, extract, cite."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa_service.core import corroboration
from qa_service.core.passages import Passage, Token
from qa_service.core.results import AnswerPassage, Answers, AnswerSpan, Citation, Conflict, Span
from qa_service.core.tables import header_of_row

from . import ranking
from .analysis import query_terms
from .spelling import respell
from .store import CandidateFeatures, PassageStore, Query

# How many passages each first stage (BM25, nearest by meaning) hands to the second.
CANDIDATES = 50
# The most of the sentence before a passage that comes with it as its context.
CONTEXT_MAX_CHARS = 300


@dataclass(frozen=True)
class Question:
    """A question analysed once: its terms and their weights, answer type and meaning."""

    terms: list[str]
    weights: dict[str, float]
    # The ids the generation holds the question's terms under, to find them in passages.
    asked: dict[int, str]
    answer_type: ranking.AnswerType
    vector: np.ndarray


def analyse(generation: PassageStore, question: str) -> Question:
    """Everything ranking needs from the question itself."""
    terms = query_terms(question)
    known = generation.terms(terms)
    return Question(
        terms=terms,
        weights={term: known.idf[term] for term in terms},
        asked=known.ids,
        answer_type=ranking.expected_answer_type(question),
        vector=generation.info.encoder.encode([question])[0],
    )


@dataclass
class Candidate:
    """A passage under consideration, with the signals its scoring found."""

    position: int
    read: CandidateFeatures
    # Things of the kind asked for: (start, end, rarity in the corpus).
    entities: list[tuple[int, int, float]]
    features: ranking.Features
    score: float = 0.0

    @property
    def passage(self) -> Passage:
        """The candidate passage."""
        return self.read.passage


def candidates(
    generation: PassageStore, question: Question, sources: Sequence[str] | None = None
) -> list[Candidate]:
    """The passages worth scoring: the best by words (BM25) and the nearest by meaning.

    None for a question with no content word ("What is it?"): its meaning is the
    question form alone, and the nearest passages would be noise.
    """
    if not question.terms:
        return []
    found = generation.candidates(Query(question.terms, question.vector, sources), CANDIDATES)
    bm25 = found.by_words
    positions = list(bm25) + [position for position in found.by_meaning if position not in bm25]
    # The idf of a passage's words weighs the things of the kind asked for it holds.
    typed = question.answer_type is not ranking.AnswerType.ANY
    reads = generation.features(positions, question.vector, idf=typed)
    best_bm25 = max(bm25.values(), default=0.0) or 1.0
    max_idf = generation.info.max_idf
    found = [
        _candidate(
            position, reads[position], question, bm25.get(position, 0.0) / best_bm25, max_idf
        )
        for position in positions
    ]
    # A heading names a topic and states no fact: it answers only a question for a
    # name, date or number it holds (a byline, a dateline, "18 Sources").
    return [c for c in found if not c.passage.heading or c.entities]


def _candidate(position, read: CandidateFeatures, question, bm25, max_idf) -> Candidate:
    """The features of one candidate passage."""
    passage = read.passage
    asked = question.asked
    matched = {asked[term] for term in read.terms if term in asked}
    covered = ranking.coverage(matched, question.weights)
    missing = [weight for term, weight in question.weights.items() if term not in matched]
    entities, rarities = [], []
    if question.answer_type is not ranking.AnswerType.ANY:
        question_spans = [
            (start, end)
            for term, start, end in zip(read.terms, read.starts, read.ends, strict=True)
            if term in asked
        ]
        entities = ranking.answer_entities(
            passage.text, passage.start, question.answer_type, question_spans
        )
    if entities:
        words = list(zip(read.starts, read.ends, read.idf, strict=True))
        rarities = ranking.entity_rarity(entities, words, max_idf)
    features = ranking.Features(
        bm25=bm25,
        coverage=covered,
        answer_type=max(rarities, default=0.0),
        similarity=read.similarity,
        neighbour_similarity=max(read.beside, default=0.0),
        missing_rarest=max(missing, default=0.0) / max_idf,
        heading=float(passage.heading),
        log_length=math.log(len(passage.text)),
    )
    entities = [
        (start, end, rarity) for (start, end), rarity in zip(entities, rarities, strict=True)
    ]
    return Candidate(position, read, entities, features)


def ask(
    generation: PassageStore,
    question: str,
    *,
    k: int = 5,
    sources: Sequence[str] | None = None,
) -> Answers:
    """Rank the passages that answer `question` and cite each one."""
    started = time.perf_counter()
    analysed = analyse(generation, question)
    did_you_mean = respell(generation, question)
    found = candidates(generation, analysed, sources)
    ranked = _fold_copies(rank(found), k)
    answerable = ranking.answerable(
        analysed.answer_type,
        [c.features for c in found],
        [c.score for c in found],
    )
    # The passages the results cite besides their own (corroborations, conflicts) and the
    # ones before them (their context), read at once.
    linked = generation.passages(
        [link.other for candidate in ranked for link in candidate.read.links]
        + [candidate.position - 1 for candidate in ranked if candidate.position > 0]
    )
    # Their sentences' similarities, which choose the answer span: for these few only.
    cited = (
        generation.features([c.position for c in ranked], analysed.vector, sentences=True)
        if ranked
        else {}
    )
    passages = [
        _answer_passage(generation, candidate, rank, analysed, linked, cited[candidate.position])
        for rank, candidate in enumerate(ranked, start=1)
    ]
    return Answers(question, answerable, _elapsed_ms(started), passages, did_you_mean)


def rank(found: list[Candidate]) -> list[Candidate]:
    """The candidates scored by the fitted ranker, best first (ties in passage order)."""
    for candidate in found:
        candidate.score = ranking.relevance(candidate.features)
    return sorted(found, key=lambda c: (-c.score, c.position))


def _fold_copies(ranked: list[Candidate], k: int) -> list[Candidate]:
    """The best k candidates, leaving out copies of a better one (they are cited with it)."""
    kept: list[Candidate] = []
    copied: set[int] = set()
    for candidate in ranked:
        if candidate.position in copied:
            continue
        kept.append(candidate)
        if len(kept) == k:
            break
        copied.update(link.other for link in candidate.read.links if link.near_copy)
    return kept


def _answer_passage(
    generation, candidate: Candidate, rank, question: Question, linked, cited: CandidateFeatures
) -> AnswerPassage:
    """The cited result for one ranked candidate, with its answer span and highlights."""
    read, passage = candidate.read, candidate.passage
    source = generation.sources[passage.source]
    links = read.links
    # The question's words in the passage (no other word weighs in choosing the span).
    matched = [
        Token(question.asked[term], start, end)
        for term, start, end in zip(read.terms, read.starts, read.ends, strict=True)
        if term in question.asked
    ]
    start, end = ranking.best_span(
        source.text,
        passage.sentences,
        matched,
        question.weights,
        candidate.entities,
        cited.sentence_similarity,
    )
    return AnswerPassage(
        id=passage.id,
        rank=rank,
        score=round(candidate.score, 4),
        text=passage.text,
        answer=AnswerSpan(text=source.text[start:end], start=start, end=end),
        highlights=[Span(t.start, t.end) for t in matched],
        citation=_citation(generation, passage),
        corroborated_by=_corroborations(generation, links, linked),
        conflicts=_conflicts(generation, links, linked),
        context_before=_context_before(source.text, passage, linked.get(candidate.position - 1)),
    )


def _context_before(text: str, passage: Passage, previous: Passage | None) -> AnswerSpan | None:
    """A table row's header; else the last sentence of the passage before, when it comes
    before in the same source."""
    if header := header_of_row(text, passage.start):
        start, end = header
    elif previous is None or previous.source != passage.source or previous.end > passage.start:
        return None
    else:
        start, end = previous.sentences[-1]
    if end - start > CONTEXT_MAX_CHARS:
        # A long sentence's end is what leads into the passage: from a word's start.
        start = end - CONTEXT_MAX_CHARS
        while start < end and not text[start - 1].isspace():
            start += 1
    return AnswerSpan(text=text[start:end], start=start, end=end) if start < end else None


def _corroborations(generation, links, linked: dict[int, Passage]) -> list[Citation]:
    """Another source's passage stating the same fact: the closest of each source, once."""
    cited: dict[str, Citation] = {}
    for link in links:  # closest first
        other = linked[link.other]
        if link.similarity >= corroboration.SAME_FACT and other.source not in cited:
            cited[other.source] = _citation(generation, other)
    return list(cited.values())


def _conflicts(generation, links, linked: dict[int, Passage]) -> list[Conflict]:
    """Dates and amounts that passages about the same fact in other sources state differently."""
    return [
        Conflict(kind, value, other_value, _citation(generation, linked[link.other]))
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
        sha256=generation.sources[passage.source].sha256,
    )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)

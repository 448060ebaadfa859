"""Answer a question from an index generation: retrieve, re-rank, extract, cite."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa_service.core import corroboration
from qa_service.core.passages import Passage
from qa_service.core.results import AnswerPassage, Answers, AnswerSpan, Citation, Conflict, Span

from . import ranking
from .analysis import query_terms
from .spelling import respell
from .store import PassageStore

# How many passages each first stage (BM25, nearest by meaning) hands to the second.
CANDIDATES = 50


@dataclass(frozen=True)
class Question:
    """A question analysed once: its terms and their weights, answer type and meaning."""

    terms: list[str]
    weights: dict[str, float]
    answer_type: ranking.AnswerType
    vector: np.ndarray


def analyse(generation: PassageStore, question: str) -> Question:
    """Everything ranking needs from the question itself."""
    terms = query_terms(question)
    weights = {term: generation.term_idf(term) for term in terms}
    return Question(
        terms=terms,
        weights=weights,
        answer_type=ranking.expected_answer_type(question),
        vector=generation.encode_question(question),
    )


@dataclass
class Candidate:
    """A passage under consideration, with the signals its scoring found."""

    position: int
    passage: Passage
    # Things of the kind asked for: (start, end, rarity in the corpus).
    entities: list[tuple[int, int, float]]
    # The cosine of the question with each of the passage's sentences.
    sentence_similarity: list[float]
    features: ranking.Features
    score: float = 0.0


def candidates(
    generation: PassageStore, question: Question, sources: Sequence[str] | None = None
) -> list[Candidate]:
    """The passages worth scoring: the best by words (BM25) and the nearest by meaning.

    None for a question with no content word ("What is it?"): its meaning is the
    question form alone, and the nearest passages would be noise.
    """
    if not question.terms:
        return []
    bm25 = generation.best_passages(question.terms, CANDIDATES, sources)
    nearest = generation.nearest(question.vector, CANDIDATES, sources)
    positions = list(bm25) + [position for position in nearest if position not in bm25]
    similarity = _similarities(generation, positions, question.vector)
    best_bm25 = max(bm25.values(), default=0.0) or 1.0
    asked = generation.term_ids(question.terms)
    found = [
        _candidate(
            generation,
            position,
            question,
            asked,
            bm25.get(position, 0.0) / best_bm25,
            similarity[position],
            _neighbour_similarity(generation, similarity, position),
        )
        for position in positions
    ]
    # A heading names a topic and states no fact: it answers only a question for a
    # name, date or number it holds (a byline, a dateline, "18 Sources").
    return [c for c in found if not c.passage.heading or c.entities]


def _similarities(generation, positions: list[int], vector: np.ndarray) -> dict[int, float]:
    """The cosine of the question with each candidate and the passages beside it."""
    wanted = {other for position in positions for other in (position - 1, position, position + 1)}
    wanted = sorted(p for p in wanted if 0 <= p < generation.passage_count)
    if not wanted:
        return {}
    similarity = generation.similarity(wanted, vector)
    return dict(zip(wanted, similarity.tolist(), strict=True))


def _neighbour_similarity(generation, similarity: dict[int, float], position: int) -> float:
    """The cosine of the passage before or after in the same source, whichever is nearer."""
    source = generation.passages[position].source
    around = [
        similarity[other]
        for other in (position - 1, position + 1)
        if 0 <= other < len(generation.passages) and generation.passages[other].source == source
    ]
    return max(around, default=0.0)


def _candidate(generation, position, question, asked, bm25, similarity, neighbour) -> Candidate:
    """The features of one candidate passage (`asked`: the question's terms by term id)."""
    passage = generation.passages[position]
    terms, starts, ends = generation.token_columns(position)
    hits = [i for i, term in enumerate(terms) if term in asked]
    question_spans = [(starts[i], ends[i]) for i in hits]
    matched = {asked[terms[i]] for i in hits}
    covered = ranking.coverage(matched, question.weights)
    missing = [weight for term, weight in question.weights.items() if term not in matched]
    entities = ranking.answer_entities(
        passage.text, passage.start, question.answer_type, question_spans
    )
    rarities = []
    if entities:
        words = list(zip(starts, ends, generation.token_idf(terms), strict=True))
        rarities = ranking.entity_rarity(entities, words, generation.max_idf)
    sentence_similarity = generation.sentence_similarity(position, question.vector)
    features = ranking.Features(
        bm25=bm25,
        coverage=covered,
        answer_type=max(rarities, default=0.0),
        similarity=similarity,
        neighbour_similarity=neighbour,
        missing_rarest=max(missing, default=0.0) / generation.max_idf,
        heading=float(passage.heading),
        log_length=math.log(len(passage.text)),
    )
    entities = [
        (start, end, rarity) for (start, end), rarity in zip(entities, rarities, strict=True)
    ]
    return Candidate(position, passage, entities, sentence_similarity, features)


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
    for candidate in found:
        candidate.score = ranking.relevance(candidate.features)
    ranked = _fold_copies(generation, sorted(found, key=lambda c: (-c.score, c.position)), k)
    answerable = ranking.answerable(
        analysed.answer_type,
        [c.features for c in found],
        [c.score for c in found],
    )
    # The passages the results cite besides their own (corroborations, conflicts), read at once.
    linked = generation.passages_at(
        [link.other for candidate in ranked for link in generation.links[candidate.position]]
    )
    passages = [
        _answer_passage(generation, candidate, rank, analysed.weights, linked)
        for rank, candidate in enumerate(ranked, start=1)
    ]
    return Answers(question, answerable, _elapsed_ms(started), passages, did_you_mean)


def _fold_copies(generation, ranked: list[Candidate], k: int) -> list[Candidate]:
    """The best k candidates, leaving out copies of a better one (they are cited with it)."""
    kept: list[Candidate] = []
    copied: set[int] = set()
    for candidate in ranked:
        if candidate.position in copied:
            continue
        kept.append(candidate)
        if len(kept) == k:
            break
        copied.update(link.other for link in generation.links[candidate.position] if link.near_copy)
    return kept


def _answer_passage(generation, candidate: Candidate, rank, weights, linked) -> AnswerPassage:
    """The cited result for one ranked candidate, with its answer span and highlights."""
    passage = candidate.passage
    source = generation.sources[passage.source]
    links = generation.links[candidate.position]
    tokens = generation.tokens(candidate.position)
    matched = [t for t in tokens if t.term in weights]
    start, end = ranking.best_span(
        source.text,
        passage.sentences,
        tokens,
        weights,
        candidate.entities,
        candidate.sentence_similarity,
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
            _citation(generation, linked[link.other])
            for link in links
            if link.similarity >= corroboration.SAME_FACT
        ],
        conflicts=_conflicts(generation, links, linked),
    )


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

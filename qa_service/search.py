"""Answer a question from an index generation: retrieve, re-rank, extract, cite."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from whoosh.analysis import STOP_WORDS
from whoosh.query import Or, Term

from . import corroboration, ranking
from .index import IndexGeneration, make_analyzer
from .passages import Passage
from .results import AnswerPassage, Answers, AnswerSpan, Citation, Conflict, Span
from .spelling import respell

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
# How many passages each first stage (BM25, nearest by meaning) hands to the second.
CANDIDATES = 50


def query_terms(question: str) -> list[str]:
    """The distinct analysed terms of a question, in order; query syntax is plain text."""
    content = FRAMING.sub(" ", question)
    return list(dict.fromkeys(token.text for token in QUERY_ANALYZER(content)))


@dataclass(frozen=True)
class Question:
    """A question analysed once: its terms and their weights, answer type and meaning."""

    terms: list[str]
    weights: dict[str, float]
    answer_type: ranking.AnswerType
    vector: np.ndarray


def analyse(generation: IndexGeneration, question: str) -> Question:
    """Everything ranking needs from the question itself."""
    terms = query_terms(question)
    weights = {term: generation.term_idf(term) for term in terms}
    return Question(
        terms=terms,
        weights=weights,
        answer_type=ranking.expected_answer_type(question),
        vector=generation.encoder.encode([question])[0],
    )


@dataclass
class Candidate:
    """A passage under consideration, with the signals its scoring found."""

    docnum: int
    passage: Passage
    # Things of the kind asked for: (start, end, rarity in the corpus).
    entities: list[tuple[int, int, float]]
    # The cosine of the question with each of the passage's sentences.
    sentence_similarity: list[float]
    features: ranking.Features
    score: float = 0.0


def candidates(
    generation: IndexGeneration, question: Question, sources: Sequence[str] | None = None
) -> list[Candidate]:
    """The passages worth scoring: the best by words (BM25) and the nearest by meaning.

    None for a question with no content word ("What is it?"): its meaning is the
    question form alone, and the nearest passages would be noise.
    """
    if not question.terms:
        return []
    if sources:
        bm25 = _bm25_within(generation, question.terms, sources)
        allowed = np.isin(generation.passage_sources, list(sources))
    else:
        bm25 = generation.postings.best_passages(question.terms, CANDIDATES)
        allowed = None
    nearest = generation.nearest.nearest(question.vector, CANDIDATES, allowed)
    docnums = list(bm25) + [docnum for docnum in nearest if docnum not in bm25]
    similarity = _similarities(generation, docnums, question.vector)
    best_bm25 = max(bm25.values(), default=0.0) or 1.0
    term_ids = generation.postings.term_ids
    asked = {term_ids[term]: term for term in question.terms if term in term_ids}
    found = [
        _candidate(
            generation,
            docnum,
            question,
            asked,
            bm25.get(docnum, 0.0) / best_bm25,
            similarity[docnum],
            _neighbour_similarity(generation, similarity, docnum),
        )
        for docnum in docnums
    ]
    # A heading names a topic and states no fact: it answers only a question for a
    # name, date or number it holds (a byline, a dateline, "18 Sources").
    return [c for c in found if c.docnum not in generation.headings or c.entities]


def _bm25_within(generation, terms: list[str], sources: Sequence[str]) -> dict[int, float]:
    """The best passages of some sources by BM25 over full posting lists (Whoosh's search).

    The champion lists keep a term's best passages over the whole corpus, which
    may all lie outside the sources asked for.
    """
    allowed = Or([Term("source", name) for name in sources])
    with generation.searcher() as searcher:
        query = Or([Term("text", term) for term in terms])
        hits = searcher.search(query, limit=CANDIDATES, filter=allowed)
        return {hit.docnum: hit.score for hit in hits}


def _similarities(generation, docnums: list[int], vector: np.ndarray) -> dict[int, float]:
    """The cosine of the question with each candidate and the passages beside it."""
    wanted = {other for docnum in docnums for other in (docnum - 1, docnum, docnum + 1)}
    wanted = np.array(sorted(d for d in wanted if 0 <= d < len(generation.passages)))
    if not len(wanted):
        return {}
    similarity = generation.nearest.similarity(wanted, vector)
    return dict(zip(wanted.tolist(), similarity.tolist(), strict=True))


def _neighbour_similarity(generation, similarity: dict[int, float], docnum: int) -> float:
    """The cosine of the passage before or after in the same source, whichever is nearer."""
    source = generation.passages[docnum].source
    around = [
        similarity[other]
        for other in (docnum - 1, docnum + 1)
        if 0 <= other < len(generation.passages) and generation.passages[other].source == source
    ]
    return max(around, default=0.0)


def _candidate(generation, docnum, question, asked, bm25, similarity, neighbour) -> Candidate:
    """The features of one candidate passage (`asked`: the question's terms by term id)."""
    passage = generation.passages[docnum]
    terms, starts, ends = generation.postings.token_columns(docnum)
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
        idf = generation.postings.idf[terms].tolist()
        words = list(zip(starts, ends, idf, strict=True))
        rarities = ranking.entity_rarity(entities, words, generation.max_idf)
    rows = generation.sentence_vectors[
        generation.sentence_rows[docnum] : generation.sentence_rows[docnum + 1]
    ]
    sentence_similarity = (rows @ question.vector).tolist()
    features = ranking.Features(
        bm25=bm25,
        coverage=covered,
        answer_type=max(rarities, default=0.0),
        similarity=similarity,
        neighbour_similarity=neighbour,
        missing_rarest=max(missing, default=0.0) / generation.max_idf,
        heading=float(docnum in generation.headings),
        log_length=math.log(len(passage.text)),
    )
    entities = [
        (start, end, rarity) for (start, end), rarity in zip(entities, rarities, strict=True)
    ]
    return Candidate(docnum, passage, entities, sentence_similarity, features)


def ask(
    generation: IndexGeneration,
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
    ranked = _fold_copies(generation, sorted(found, key=lambda c: (-c.score, c.docnum)), k)
    answerable = ranking.answerable(
        analysed.answer_type,
        [c.features for c in found],
        [c.score for c in found],
    )
    passages = [
        _answer_passage(generation, candidate, rank, analysed.weights)
        for rank, candidate in enumerate(ranked, start=1)
    ]
    return Answers(question, answerable, _elapsed_ms(started), passages, did_you_mean)


def _fold_copies(generation, ranked: list[Candidate], k: int) -> list[Candidate]:
    """The best k candidates, leaving out copies of a better one (they are cited with it)."""
    kept: list[Candidate] = []
    copied: set[int] = set()
    for candidate in ranked:
        if candidate.docnum in copied:
            continue
        kept.append(candidate)
        if len(kept) == k:
            break
        copied.update(link.other for link in generation.links[candidate.docnum] if link.near_copy)
    return kept


def _answer_passage(generation, candidate: Candidate, rank, weights) -> AnswerPassage:
    """The cited result for one ranked candidate, with its answer span and highlights."""
    passage = candidate.passage
    source = generation.sources[passage.source]
    links = generation.links[candidate.docnum]
    tokens = generation.tokens(candidate.docnum)
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

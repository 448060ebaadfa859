"""Stored terms and champion lists: what a question reads of the words in the index."""

from __future__ import annotations

import pytest
from whoosh.query import Or, Term

from qa_service.core.passages import Token
from qa_service.index import open_generation
from qa_service.retrieval.analysis import passage_tokens, query_terms
from qa_service.retrieval.postings import Postings, build_postings

QUESTIONS = [
    "What damages are sought?",
    "Who is the plaintiff in the LinkedIn lawsuit?",
    "When was the privacy policy changed?",
    "Which court was the case filed in?",
]


@pytest.fixture(scope="module")
def generation(index_dir):
    return open_generation(index_dir)


def test_stored_terms_are_the_analysis_of_each_passage(generation):
    count = generation.info.passage_count
    tokens = generation.tokens(range(count))
    for docnum, passage in generation.passages(range(count)).items():
        assert tokens[docnum] == passage_tokens(passage)


@pytest.mark.parametrize("question", QUESTIONS)
def test_champion_lists_score_as_whoosh_s_bm25_when_they_hold_every_passage(generation, question):
    """On five articles no term is in more passages than a list holds: the scores are exact."""
    terms = query_terms(question)
    with generation.searcher() as searcher:
        hits = searcher.search(Or([Term("text", term) for term in terms]), limit=20)
        whoosh = [(hit.docnum, hit.score) for hit in hits]
    ours = list(generation.postings.best_passages(terms, 20).items())
    assert [docnum for docnum, _ in ours] == [docnum for docnum, _ in whoosh]
    assert [score for _, score in ours] == pytest.approx([score for _, score in whoosh], rel=1e-5)


def _passages(*texts: str) -> list[tuple[Token, ...]]:
    return [tuple(Token(word, 0, 0) for word in text.split()) for text in texts]


def test_a_term_keeps_only_its_best_passages_best_first():
    tokens = _passages("cat dog bird fish", "cat cat", "cat dog dog bird", "dog", "cat cat cat")
    postings = build_postings(tokens, champions=2)
    cat = postings.term_ids["cat"]
    kept = postings.champion_passages[postings.champion_rows[cat] : postings.champion_rows[cat + 1]]
    scores = postings.champion_scores[postings.champion_rows[cat] : postings.champion_rows[cat + 1]]
    assert kept.tolist() == [4, 1]  # most mentions first; longer passages lose
    assert scores[0] > scores[1]
    # A rare term's list is whole, and its passages are found on it.
    assert list(postings.best_passages(["fish"], 5)) == [0]


def test_a_question_s_passages_are_ranked_by_the_sum_of_their_terms(tmp_path):
    tokens = _passages("cat", "dog", "cat dog", "bird")
    postings = build_postings(tokens)
    best = postings.best_passages(["cat", "dog", "unknown"], 10)
    assert next(iter(best)) == 2
    assert set(best) == {0, 1, 2}
    assert postings.best_passages(["unknown"], 10) == {}
    postings.save(tmp_path)
    again = Postings.load(tmp_path)
    assert again.best_passages(["cat", "dog"], 10) == postings.best_passages(["cat", "dog"], 10)
    assert again.tokens(2) == postings.tokens(2)

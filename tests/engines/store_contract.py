"""What every engine's opened generation must do (`retrieval.store.PassageStore`).

As haystack keeps one document-store suite that each store's tests subclass, an
engine's test module subclasses `StoreContract` and gives it a `store` fixture:
the seed articles indexed by that engine. The tests speak only the protocol, so
a new engine passes them or says which promise it breaks.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from qa_service.retrieval.analysis import WORD, passage_tokens, query_terms
from qa_service.retrieval.search import ask
from qa_service.retrieval.store import PassageStore, Query

QUESTIONS = [
    "What damages are sought?",
    "Which court is the case filed in?",
    "Who filed the lawsuit?",
    "When did LinkedIn change its privacy settings?",
    "Did LinkedIn share private messages to train AI models?",
]
LIMIT = 20


class StoreContract:
    """The promises of a PassageStore over the seed articles, whatever engine holds them."""

    @pytest.fixture()
    def store(self) -> PassageStore:
        raise NotImplementedError("an engine's test class gives the store it tests")

    def _candidates(self, store, question, sources=None) -> list[int]:
        vector = store.info.encoder.encode([question])[0]
        found = store.candidates(Query(query_terms(question), vector, sources), LIMIT)
        return list(dict.fromkeys([*found.by_words, *found.by_meaning]))

    def test_info_names_the_generation_and_its_figures(self, store):
        info = store.info
        assert info.name and isinstance(info.name, str)
        assert info.passage_count >= sum(source.passages for source in store.sources.values())
        assert info.mean_length > 0
        assert info.max_idf == pytest.approx(math.log(info.passage_count) + 1)
        assert isinstance(info.boilerplate, frozenset)
        assert info.encoder.encode(["a question"]).shape == (1, 384)

    def test_sources_are_the_articles_by_name_with_their_digest(self, store):
        assert len(store.sources) == len(list(store.sources)) == 5
        for name, source in store.sources.items():
            assert source.name == name
            assert source.sha256 == hashlib.sha256(source.text.encode()).hexdigest()
        assert store.sources.get("no-such-article.txt") is None

    @pytest.mark.parametrize("question", QUESTIONS)
    def test_every_candidate_quotes_its_source_exactly(self, store, question):
        positions = self._candidates(store, question)
        assert positions
        for passage in store.passages(positions).values():
            source = store.sources[passage.source]
            assert source.text[passage.start : passage.end] == passage.text
            raw = source.text.encode()[passage.byte_start : passage.byte_end]
            assert raw.decode() == passage.text

    @pytest.mark.parametrize("question", QUESTIONS)
    def test_candidates_are_ranked_and_bounded(self, store, question):
        vector = store.info.encoder.encode([question])[0]
        found = store.candidates(Query(query_terms(question), vector), LIMIT)
        scores = list(found.by_words.values())
        assert 0 < len(scores) <= LIMIT and scores == sorted(scores, reverse=True)
        assert 0 < len(found.by_meaning) <= LIMIT
        reads = store.features(found.by_meaning, vector)
        similarity = [reads[position].similarity for position in found.by_meaning]
        assert similarity == sorted(similarity, reverse=True)

    def test_candidates_by_words_alone_have_no_meaning_part(self, store):
        found = store.candidates(Query(["damag"], None), LIMIT)
        assert found.by_words and found.by_meaning == []

    def test_candidates_stay_within_the_sources_asked_for(self, store):
        name = sorted(store.sources)[1]
        positions = self._candidates(store, "What damages are sought?", [name])
        assert positions
        assert {p.source for p in store.passages(positions).values()} == {name}

    def test_terms_weigh_rare_terms_more_and_unknown_ones_most(self, store):
        known = store.terms(["linkedin", "damag", "zzqxv"])
        assert known.idf["zzqxv"] == pytest.approx(store.info.max_idf)
        assert 0 < known.idf["linkedin"] < known.idf["damag"] < store.info.max_idf
        assert set(known.ids.values()) == {"linkedin", "damag"}

    @pytest.mark.parametrize("question", QUESTIONS)
    def test_features_read_each_candidate_in_one_call(self, store, question):
        positions = self._candidates(store, question)
        vector = store.info.encoder.encode([question])[0]
        reads = store.features(positions, vector, idf=True)
        assert set(reads) == set(positions)
        ids = store.terms(query_terms(question)).ids
        for position, read in reads.items():
            passage = read.passage
            assert passage == store.passages([position])[position]
            assert len(read.terms) == len(read.starts) == len(read.ends) == len(read.idf)
            assert all(0 < idf <= store.info.max_idf for idf in read.idf)
            # The question's terms are found under the ids `terms` gives them.
            analysed = [token.term for token in passage_tokens(passage)]
            assert [ids.get(term) for term in read.terms] == [
                term if term in ids.values() else None for term in analysed
            ]
            spans = zip(read.starts, read.ends, strict=True)
            assert all(passage.start <= s < e <= passage.end for s, e in spans)
            assert -1 <= read.similarity <= 1 and len(read.beside) <= 2
            assert read.sentence_similarity is None  # only when asked for
            others = store.passages([link.other for link in read.links])
            assert all(other.source != passage.source for other in others.values())
        assert all(read.idf is None for read in store.features(positions, vector).values())
        cited = store.features(positions[:5], vector, sentences=True)
        for read in cited.values():
            assert len(read.sentence_similarity) == len(read.passage.sentences)
            assert all(-1 <= similarity <= 1 for similarity in read.sentence_similarity)

    def test_a_passage_is_nearest_its_own_text(self, store):
        position = self._candidates(store, "What damages are sought?")[0]
        passage = store.passages([position])[position]
        vector = store.info.encoder.encode([passage.text])[0]
        assert store.features([position], vector)[position].similarity > 0.99
        assert store.features([], vector) == {}

    def test_tokens_are_each_passage_s_analysis(self, store):
        positions = self._candidates(store, "Who filed the lawsuit?")
        tokens = store.tokens(positions)
        for position, passage in store.passages(positions).items():
            assert tokens[position] == passage_tokens(passage)

    def test_words_are_known_as_written_and_offered_for_misspellings(self, store):
        text = next(iter(store.sources.values())).text.lower()
        word = next(w for w in WORD.findall(text) if len(w) > 5)
        assert store.known_words([word, "zzqxvwords"]) == {word}
        words, frequencies = store.words_like(word)
        assert word in words and len(words) == len(frequencies)
        assert all(f > 0 for f in frequencies)

    def test_a_fresh_generation_is_undamaged(self, store):
        assert store.damage() is None

    @pytest.mark.parametrize("question", QUESTIONS)
    def test_answers_cite_text_that_stands_in_the_source(self, store, question):
        answers = ask(store, question, k=3)
        assert answers.passages
        for passage in answers.passages:
            text = store.sources[passage.citation.source].text
            assert text[passage.citation.start : passage.citation.end] == passage.text
            assert text[passage.answer.start : passage.answer.end] == passage.answer.text

    def test_questions_are_encoded_to_unit_vectors(self, store):
        vector = store.info.encoder.encode(["Who filed the lawsuit?"])[0]
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-3)

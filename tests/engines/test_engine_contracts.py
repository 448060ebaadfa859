"""The store contract (store_contract.py) run by every engine: Whoosh, PostgreSQL, and a
layer over each."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from postgres_support import postgres_server
from store_contract import StoreContract

from qa_service.core.corpus import read_corpus
from qa_service.engines.layered import LayeredStore
from qa_service.index import (
    build_index,
    configured_engine,
    corpus_hash,
    open_generation,
    prepare,
    update_index,
)
from qa_service.retrieval import nearest
from qa_service.retrieval.evaluation import load_questions
from qa_service.retrieval.nearest import build_vector_index
from qa_service.retrieval.store import Query


class TestWhoosh(StoreContract):
    @pytest.fixture()
    def store(self, whoosh_store):
        return whoosh_store


class TestPostgres(StoreContract):
    @pytest.fixture()
    def store(self, postgres_store):
        return postgres_store


class TestLayeredOverWhoosh(StoreContract):
    @pytest.fixture()
    def store(self, layered_whoosh_store):
        return layered_whoosh_store


class TestLayeredOverPostgres(StoreContract):
    @pytest.fixture()
    def store(self, layered_postgres_store):
        return layered_postgres_store


@pytest.fixture(scope="module")
def whoosh_store(index_dir):
    """The seeds' Whoosh generation."""
    return open_generation(index_dir)


@pytest.fixture(scope="module")
def postgres_store(postgres_index):
    """The seeds' generation on one PostgreSQL server."""
    url = postgres_index["QA_DATABASE_URL"]
    return configured_engine({"BACKEND": "postgres", "DATABASE_URL": url}).open()


@pytest.fixture(scope="module")
def layered_whoosh_store(seeds_dir, tmp_path_factory):
    """The seeds as a Whoosh layer over a full build."""
    folder = tmp_path_factory.mktemp("layered")
    return _layered(configured_engine({"INDEX_DIR": folder / "index"}), seeds_dir, folder)


@pytest.fixture(scope="module")
def layered_postgres_store(seeds_dir, tmp_path_factory):
    """The seeds as a PostgreSQL layer over a full build, on a server of their own."""
    with postgres_server() as server:
        engine = configured_engine({"BACKEND": "postgres", "DATABASE_URL": server.url})
        yield _layered(engine, seeds_dir, tmp_path_factory.mktemp("layered"))


def _layered(engine, seeds_dir, folder) -> LayeredStore:
    """The seeds as a layer over a full build of all but one of them, another corrected."""
    corpus = folder / "corpus"
    shutil.copytree(seeds_dir, corpus)
    names = sorted(path.name for path in corpus.glob("*.txt"))
    held_back = (corpus / names[-1]).read_text(encoding="utf-8")
    (corpus / names[-1]).unlink()
    build_index(corpus, engine)
    base = engine.open()
    (corpus / names[-1]).write_text(held_back, encoding="utf-8")
    corrected = corpus / names[0]
    corrected.write_text(corrected.read_text(encoding="utf-8") + "\nCorrection.\n")
    update_index(corpus, engine, base, layer_share=1.0)
    store = engine.open(reuse=base)
    assert isinstance(store, LayeredStore) and store.hidden
    return store


def test_clustered_vectors_give_both_engines_the_same_nearest_passages(
    seeds_dir, questions_path, tmp_path, monkeypatch
):
    """Beyond the exact limit (here 10 passages) the Whoosh engine probes its clusters in
    memory and PostgreSQL reads theirs from the database: the same passages come out,
    the best 8 in a projection on 16 directions compared by their whole vectors."""
    monkeypatch.setattr(nearest, "PROJECTED", 16)
    monkeypatch.setattr(nearest, "RESCORED", 8)
    articles = read_corpus(seeds_dir)
    prepared = prepare(articles, None)
    by_docnum = prepared.vectors.vectors[prepared.vectors.position]
    clustered = dataclasses.replace(prepared, vectors=build_vector_index(by_docnum, exact_limit=10))
    assert len(clustered.vectors.centres) and clustered.vectors.projection.shape[1] == 16
    whoosh = configured_engine({"INDEX_DIR": tmp_path / "index"})
    whoosh.publish(clustered, corpus_hash(articles))
    questions = [question["question"] for question in load_questions(questions_path)]
    vectors = whoosh.open().info.encoder.encode(questions)
    with postgres_server() as server:
        engine = configured_engine({"BACKEND": "postgres", "DATABASE_URL": server.url})
        engine.publish(clustered, corpus_hash(articles))
        stores = [whoosh.open(), engine.open()]
        for vector in vectors:
            found = [store.candidates(Query(["x"], vector, None), 5).by_meaning for store in stores]
            assert found[0] == found[1]
            assert len(found[0]) == 5
            similarity = by_docnum[found[0]] @ vector
            assert np.all(np.diff(similarity) <= 1e-6)

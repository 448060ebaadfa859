"""Writes indexed as a layer over the last full build (layered.py), on both engines."""

from __future__ import annotations

import shutil

import pytest
from postgres_support import postgres_server

from qa_service.engines import generations
from qa_service.engines.layered import LayeredStore
from qa_service.index import build_index, configured_engine, update_index
from qa_service.retrieval.evaluation import load_questions
from qa_service.retrieval.search import ask
from qa_service.retrieval.store import IndexUnavailable

NEW_ARTICLE = (
    "Zebra Court ruling\n\n"
    "A judge in Oakland ordered the company to pay zebra damages of $7 million on March 3, "
    "2025. The plaintiffs called the zebra ruling a victory for every member.\n"
)
CORRECTION = "Correction: the hearing on the motion moved to Fresno county court.\n\n"


@pytest.fixture(params=["whoosh", "postgres"])
def engine(request, tmp_path):
    """A fresh engine of each kind (a PostgreSQL server of its own)."""
    if request.param == "whoosh":
        yield configured_engine({"INDEX_DIR": tmp_path / "index"})
        return
    with postgres_server() as server:
        yield configured_engine({"BACKEND": "postgres", "DATABASE_URL": server.url})


@pytest.fixture()
def corpus(seeds_dir, tmp_path):
    folder = tmp_path / "corpus"
    shutil.copytree(seeds_dir, folder)
    return folder


def _write(corpus):
    """Add an article, correct one, delete one: what the write API does to the folder."""
    names = sorted(path.name for path in corpus.glob("*.txt"))
    (corpus / "zebra.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    corrected = corpus / names[1]
    corrected.write_text(CORRECTION + corrected.read_text(encoding="utf-8"), encoding="utf-8")
    (corpus / names[2]).unlink()
    return names[1], names[2]


def _cited(store, answers):
    """Every citation of the answers, each checked against the text it cites."""
    citations = []
    for passage in answers.passages:
        citation = passage.citation
        source = store.sources[citation.source]
        assert source.text[citation.start : citation.end] == passage.text
        assert citation.sha256 == source.sha256
        citations.append(citation)
    return citations


def test_a_write_is_a_layer_that_answers_as_a_full_build(engine, corpus, tmp_path, questions_path):
    build_index(corpus, engine)
    full_build = engine.open()
    corrected, deleted = _write(corpus)

    report = update_index(corpus, engine, full_build, layer_share=1.0)
    store = engine.open(reuse=full_build)

    assert isinstance(store, LayeredStore) and store.info.name == report.generation
    assert store.base is full_build  # the worker's base, not read again
    rebuilt = configured_engine({"INDEX_DIR": tmp_path / "rebuilt"})
    build_index(corpus, rebuilt)
    whole = rebuilt.open()
    assert sorted(store.sources) == sorted(whole.sources)
    assert report.passages == whole.info.passage_count
    # Asked again, the layer is the index: its count is every passage it serves.
    again = build_index(corpus, engine)
    assert not again.built and again.passages == whole.info.passage_count
    assert deleted not in store.sources
    assert store.sources[corrected].text.startswith(CORRECTION)

    new = ask(store, "How much did the zebra ruling award?")
    assert new.passages[0].citation.source == "zebra.txt"
    assert "$7 million" in new.passages[0].text
    moved = ask(store, "Where did the hearing on the motion move?")
    assert moved.passages[0].text == CORRECTION.strip()
    first_agree = 0
    questions = load_questions(questions_path)
    for question in questions:
        layered_citations = _cited(store, ask(store, question["question"]))
        whole_citations = _cited(whole, ask(whole, question["question"]))
        assert deleted not in {c.source for c in layered_citations}
        first_agree += layered_citations[0] == whole_citations[0]
    # The base's own scores keep its build's statistics until the next full build.
    assert first_agree >= 0.9 * len(questions)


def test_links_reach_from_the_layer_into_the_base(engine, corpus):
    build_index(corpus, engine)
    base = engine.open()
    quoted = base.passages([5])[5]
    (corpus / "quoting.txt").write_text(
        f"Another report\n\nAs reported elsewhere: {quoted.text}\n", encoding="utf-8"
    )
    update_index(corpus, engine, base, layer_share=1.0)
    store = engine.open(reuse=base)
    position = store.info.passage_count - 1
    assert store.passages([position])[position].source == "quoting.txt"
    read = store.features([position], store.info.encoder.encode(["quoting"])[0])[position]
    assert 5 in {link.other for link in read.links}


def test_a_write_beyond_the_layer_share_builds_everything(engine, corpus):
    build_index(corpus, engine)
    base = engine.open()
    _write(corpus)
    update_index(corpus, engine, base, layer_share=0.01)
    assert not isinstance(engine.open(reuse=base), LayeredStore)


def test_successive_layers_lie_over_one_kept_base_until_a_full_build(corpus, tmp_path):
    index_dir = tmp_path / "index"
    engine = configured_engine({"INDEX_DIR": index_dir})
    base_name = build_index(corpus, engine).generation
    store = engine.open()
    for number in range(3):
        (corpus / f"new-{number}.txt").write_text(
            f"Note {number}\n\nThe zebra count rose to {number + 10} on Monday.\n",
            encoding="utf-8",
        )
        update_index(corpus, engine, store, layer_share=1.0)
        store = engine.open(reuse=store)
        assert isinstance(store, LayeredStore) and store.base.info.name == base_name
        # Each layer holds every article that differs from the base, not just the last.
        assert {f"new-{n}.txt" for n in range(number + 1)} <= set(store.layer.sources)
    kept = {path.name for path in index_dir.glob("gen-*")}
    assert base_name in kept and len(kept) == generations.GENERATIONS_KEPT + 1
    assert engine.open().base.info.name == base_name  # opened afresh, without a previous one

    compacted = build_index(corpus, engine, force=True)
    assert not isinstance(engine.open(), LayeredStore)
    assert compacted.passages == store.info.passage_count - sum(
        end - start for start, end in store.hidden.values()
    )


def test_a_layer_only_of_deletions_hides_the_article(engine, corpus):
    build_index(corpus, engine)
    base = engine.open()
    gone = sorted(base.sources)[0]
    (corpus / gone).unlink()
    update_index(corpus, engine, base, layer_share=1.0)
    store = engine.open(reuse=base)
    assert isinstance(store, LayeredStore) and store.layer.info.passage_count == 0
    assert gone not in store.sources and len(store.sources) == len(base.sources) - 1
    for question in ("What damages are sought?", "Who filed the lawsuit?"):
        assert gone not in {c.source for c in _cited(store, ask(store, question))}


def test_a_write_undone_lays_an_empty_layer_not_a_full_build(engine, corpus):
    build_index(corpus, engine)
    base = engine.open()
    (corpus / "brief.txt").write_text("Brief\n\nThe zebra crossing reopened.\n", encoding="utf-8")
    update_index(corpus, engine, base, layer_share=0.5)
    added = engine.open(reuse=base)
    (corpus / "brief.txt").unlink()
    update_index(corpus, engine, added, layer_share=0.5)
    undone = engine.open(reuse=added)
    assert isinstance(undone, LayeredStore) and undone.base is base
    assert undone.layer.info.passage_count == 0 and not undone.hidden
    assert sorted(undone.sources) == sorted(base.sources)


def test_a_layer_is_built_without_reading_the_rest_of_its_base(corpus, tmp_path):
    """A write's builder opens the full build only for what a layer reads of it; a
    worker's open reads it whole."""
    engine = configured_engine({"INDEX_DIR": tmp_path / "index"})
    build_index(corpus, engine)
    read_at_first_use = {"links", "vectors", "sentence_vectors", "spelling_words"}
    base = engine.open(whole=False)
    _write(corpus)
    update_index(corpus, engine, base, layer_share=1.0)
    assert not read_at_first_use & vars(base).keys()
    layered = engine.open()
    assert isinstance(layered, LayeredStore)
    assert read_at_first_use <= vars(layered.base).keys()
    assert _cited(layered, ask(layered, "Where was the hearing moved to?"))


@pytest.mark.parametrize("name", ["nearest.npz", "sentence-vectors.npy", "links.json"])
def test_what_a_builder_reads_at_first_use_is_checked_then(corpus, tmp_path, name):
    """Not whole, the files read at first use are left out of the open's digests (the bulk
    of a build's bytes) and checked when read: damage there still never goes unseen."""
    engine = configured_engine({"INDEX_DIR": tmp_path / "index"})
    build_index(corpus, engine)
    path = (tmp_path / "index" / "current").resolve() / name
    data = path.read_bytes()
    path.write_bytes(data[:64] + bytes(reversed(data[64:])))  # same size
    base = engine.open(whole=False)
    attribute = {"nearest.npz": "vectors", "sentence-vectors.npy": "sentence_vectors"}
    with pytest.raises(ValueError, match=f"differ from the manifest: {name}"):
        getattr(base, attribute.get(name, "links"))
    with pytest.raises(IndexUnavailable, match=name):
        engine.open()

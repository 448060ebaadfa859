"""Building index generations, the atomic swap, and opening per process."""

from __future__ import annotations

import gc
import importlib.util
import os
import pkgutil
import shutil
import weakref
from pathlib import Path

import pytest

from qa_service.core.corpus import read_corpus
from qa_service.engines import generations
from qa_service.index import IndexHandle, build, build_index, open_generation
from qa_service.retrieval.store import IndexUnavailable


@pytest.fixture()
def seeds_copy(seeds_dir, tmp_path):
    folder = tmp_path / "seeds"
    shutil.copytree(seeds_dir, folder)
    return folder


def test_build_then_unchanged_is_a_no_op(seeds_copy, tmp_path):
    first = build_index(seeds_copy, tmp_path / "ix")
    second = build_index(seeds_copy, tmp_path / "ix")
    assert first.built and not second.built
    assert second.generation == first.generation
    assert first.articles == 5 and first.passages > 40


def test_an_unchanged_build_writes_nothing(seeds_copy, tmp_path):
    """So a read-only index folder (a container's baked index) passes `qa-service index`."""
    index_dir = tmp_path / "ix"
    build_index(seeds_copy, index_dir)
    (index_dir / ".build.lock").unlink()
    before = {path.name: path.stat().st_mtime_ns for path in index_dir.iterdir()}
    assert not build_index(seeds_copy, index_dir).built
    assert {path.name: path.stat().st_mtime_ns for path in index_dir.iterdir()} == before


def test_a_generation_has_the_permissions_the_umask_allows(seeds_copy, tmp_path):
    previous = os.umask(0o002)
    try:
        report = build_index(seeds_copy, tmp_path / "ix")
    finally:
        os.umask(previous)
    assert (tmp_path / "ix" / report.generation).stat().st_mode & 0o777 == 0o775


def test_a_build_clears_what_a_killed_build_left(seeds_copy, tmp_path):
    index_dir = tmp_path / "ix"
    (index_dir / ".building-killed").mkdir(parents=True)
    build_index(seeds_copy, index_dir)
    assert not list(index_dir.glob(".building-*"))


def test_changed_seeds_swap_in_a_new_generation(seeds_copy, tmp_path):
    index_dir = tmp_path / "ix"
    handle = IndexHandle(index_dir)
    first = build_index(seeds_copy, index_dir)
    assert handle.generation().info.name == first.generation
    (seeds_copy / "005_new.txt").write_text("A brand new article about zebras. It is short.\n")
    second = build_index(seeds_copy, index_dir)
    assert second.built and second.generation != first.generation
    assert os.readlink(index_dir / "current") == second.generation
    reopened = handle.generation()
    assert reopened.info.name == second.generation
    assert "005_new.txt" in reopened.sources


def test_a_served_generation_is_out_of_the_collector_s_sight_and_freed_when_replaced(
    seeds_copy, tmp_path
):
    """Frozen (no full-collection pauses while serving), yet never kept after a swap."""
    index_dir = tmp_path / "ix"
    handle = IndexHandle(index_dir)
    build_index(seeds_copy, index_dir)
    served = weakref.ref(handle.generation())
    assert gc.get_freeze_count() > 0
    assert not any(obj is served() for obj in gc.get_objects())  # not tracked: frozen
    build_index(seeds_copy, index_dir, force=True)
    assert handle.generation() is not served()
    assert served() is None


def test_old_generations_are_removed(seeds_copy, tmp_path):
    index_dir = tmp_path / "ix"
    for number in range(4):
        (seeds_copy / f"extra{number}.txt").write_text(f"Article number {number} is here.\n")
        build_index(seeds_copy, index_dir)
    kept = sorted(path.name for path in index_dir.glob("gen-*"))
    assert len(kept) == generations.GENERATIONS_KEPT
    assert os.readlink(index_dir / "current") == kept[-1]
    assert not list(index_dir.glob(".building-*"))


def test_a_failed_build_leaves_the_current_generation_untouched(seeds_copy, tmp_path, monkeypatch):
    index_dir = tmp_path / "ix"
    good = build_index(seeds_copy, index_dir)
    (seeds_copy / "005_new.txt").write_text("Another article. It will not make it.\n")

    def fail(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(build, "split_passages", fail)
    with pytest.raises(OSError, match="No space left"):
        build_index(seeds_copy, index_dir)
    assert os.readlink(index_dir / "current") == good.generation
    assert sorted(
        path.name for path in index_dir.iterdir() if path.name.startswith(("gen-", ".b"))
    ) == [
        ".build.lock",
        good.generation,
    ]
    assert open_generation(index_dir).info.passage_count == good.passages


def test_an_empty_corpus_is_refused(tmp_path):
    (tmp_path / "seeds").mkdir()
    with pytest.raises(ValueError, match="no readable"):
        build_index(tmp_path / "seeds", tmp_path / "ix")


# Whoosh 2.7.4 leaves the file of an unreadable TOC for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_opening_a_missing_or_corrupt_index_names_the_path_and_the_fix(seeds_copy, tmp_path):
    with pytest.raises(IndexUnavailable, match=r"no index at .*: run `qa-service index"):
        open_generation(tmp_path / "missing")
    index_dir = tmp_path / "ix"
    report = build_index(seeds_copy, index_dir)
    for path in (index_dir / report.generation).glob("*.toc"):
        path.write_bytes(b"garbage")
    with pytest.raises(IndexUnavailable, match="is unreadable"):
        open_generation(index_dir)


def test_stored_passages_match_their_sources(index_dir, seed_texts):
    generation = open_generation(index_dir)
    passages = generation.passages(range(generation.info.passage_count))
    with generation.searcher() as searcher:
        # Whoosh's document numbers are the passages' positions.
        for docnum, fields in enumerate(searcher.all_stored_fields()):
            assert fields["id"] == passages[docnum].id
            assert fields["source"] == passages[docnum].source
    for passage in passages.values():
        assert seed_texts[passage.source][passage.start : passage.end] == passage.text
        assert all(passage.start <= s < e <= passage.end for s, e in passage.sentences)
    assert {name: doc.text for name, doc in generation.sources.items()} == seed_texts


def _engine_packages() -> list[str]:
    import qa_service.engines

    return [m.name for m in pkgutil.iter_modules(qa_service.engines.__path__) if m.ispkg]


def test_the_content_hash_covers_every_engine_s_writer():
    # An engine's writer decides what a generation holds: a change to it must be a new
    # content hash, or a build reports "unchanged" over an index it would write differently.
    engines = _engine_packages()
    assert {"whoosh", "postgres"} <= set(engines)
    for engine in engines:
        writer = f"qa_service.engines.{engine}.write"
        assert importlib.util.find_spec(writer) is not None, f"{engine} has no write module"
        assert writer in build.CONTENT_MODULES, f"{writer} is not in the content hash"


def test_the_content_hash_changes_with_any_module_it_covers(seeds_dir, monkeypatch):
    articles = read_corpus(seeds_dir)
    before = build.corpus_hash(articles)
    original = Path(importlib.util.find_spec(build.CONTENT_MODULES[-1]).origin)
    changed = original.with_name("changed_copy.py")
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        spec = real_find_spec(name, *args)
        if name == build.CONTENT_MODULES[-1]:
            changed.write_bytes(original.read_bytes() + b"\n# a change\n")
            spec = importlib.util.spec_from_file_location(name, changed)
        return spec

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    build._code_digest.cache_clear()
    try:
        assert build.corpus_hash(articles) != before
    finally:
        changed.unlink(missing_ok=True)
        monkeypatch.undo()
        build._code_digest.cache_clear()
    assert build.corpus_hash(articles) == before

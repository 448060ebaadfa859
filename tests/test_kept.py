"""Builds keep the vectors of the texts they encoded and the articles' lines, and take
them again (index/kept.py)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest

from qa_service.core.corpus import read_corpus
from qa_service.core.furniture import known_line_keys
from qa_service.engines.whoosh.engine import WhooshEngine
from qa_service.index import build_index, update_index
from qa_service.index.build import prepare
from qa_service.index.kept import FULL, LAYER, LINES, encode_texts, furniture

ENCODED = "qa_service.index.kept"


def encoded_count(caplog) -> int | None:
    """How many texts the encoder ran on, from the build's log; None when it did not run."""
    runs = [
        r.args[0] for r in caplog.records if r.name == ENCODED and r.msg.startswith("encoded %d")
    ]
    return sum(runs) if runs else None


def rows(folder, part) -> int:
    return len(np.load(folder / f"{part}.npy"))


@pytest.fixture()
def articles(seeds_dir):
    return read_corpus(seeds_dir)


def test_a_rebuild_encodes_nothing_and_gives_the_same_vectors(articles, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=ENCODED)
    uncached = prepare(articles)
    caplog.clear()
    first = prepare(articles, tmp_path)
    assert encoded_count(caplog) == rows(tmp_path, FULL) > len(first.passages)
    caplog.clear()
    again = prepare(articles, tmp_path)
    assert encoded_count(caplog) is None
    for built in (first, again):
        assert np.array_equal(built.vectors.vectors, uncached.vectors.vectors)
        assert np.array_equal(built.sentence_vectors, uncached.sentence_vectors)


def test_the_kept_texts_are_exactly_the_last_builds(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=ENCODED)
    encode_texts(["one sentence.", "another sentence."], tmp_path, FULL)
    caplog.clear()
    vectors = encode_texts(["another sentence.", "a third."], tmp_path, FULL)
    assert encoded_count(caplog) == 1
    assert rows(tmp_path, FULL) == 2
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "damage", [b"not numpy at all", b"\x93NUMPY\x01\x00" + b"\0" * 40], ids=["garbage", "torn"]
)
def test_a_damaged_file_is_encoded_again_and_replaced(tmp_path, caplog, damage):
    texts = ["one sentence.", "another sentence."]
    expected = encode_texts(texts, None, FULL)
    (tmp_path / f"{FULL}.npy").write_bytes(damage)
    caplog.set_level(logging.INFO, logger=ENCODED)
    assert np.array_equal(encode_texts(texts, tmp_path, FULL), expected)
    assert encoded_count(caplog) == 2
    assert "not read" in caplog.text
    assert rows(tmp_path, FULL) == 2


def test_a_folder_that_cannot_be_written_only_costs_the_encoding(tmp_path, caplog):
    in_the_way = tmp_path / "a file"
    in_the_way.write_text("")
    texts = ["one sentence."]
    assert np.array_equal(encode_texts(texts, in_the_way, FULL), encode_texts(texts, None, FULL))
    assert "not kept" in caplog.text


def test_a_layer_keeps_its_own_texts_until_the_next_full_build(seeds_dir, tmp_path, caplog):
    corpus = tmp_path / "corpus"
    shutil.copytree(seeds_dir, corpus)
    engine = WhooshEngine(tmp_path / "index")
    build_index(corpus, engine)
    full = rows(engine.kept_dir, FULL)
    (corpus / "note.txt").write_text("A new note. It has two sentences about the court.\n")
    caplog.set_level(logging.INFO, logger=ENCODED)
    update_index(corpus, engine)
    assert encoded_count(caplog) == rows(engine.kept_dir, LAYER) == 3
    assert rows(engine.kept_dir, FULL) == full
    caplog.clear()
    (corpus / "later.txt").write_text("Another note, written later.\n")
    update_index(corpus, engine)  # the layer again, with both notes: one new text
    assert encoded_count(caplog) == 1
    assert rows(engine.kept_dir, LAYER) == 4
    caplog.clear()
    build_index(corpus, engine, force=True)  # compaction: nothing new to encode
    assert encoded_count(caplog) is None
    assert rows(engine.kept_dir, FULL) == full + 4
    assert not (engine.kept_dir / f"{LAYER}.npy").exists()


def test_another_process_takes_the_articles_lines_from_the_folder(articles, tmp_path):
    texts = [article.text for article in articles]
    found = furniture(texts, tmp_path)
    assert set(json.loads((tmp_path / LINES).read_text())) == set(known_line_keys(texts))
    # A builder process of its own (a write's): no article's lines worked out again.
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "import qa_service.core.furniture as furniture\n"
        "from qa_service.index.kept import furniture as kept_furniture\n"
        "def worked_out(text):\n"
        "    raise AssertionError('an article read again')\n"
        "furniture.logical_lines = worked_out\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps(sorted(kept_furniture(texts, Path(sys.argv[1])))))\n"
    )
    builder = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(builder.stdout) == sorted(found)


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"zz": ["a line"]}', '{"00": 3}'])
def test_damaged_lines_are_worked_out_again(articles, tmp_path, caplog, damage):
    texts = [article.text for article in articles]
    expected = furniture(texts, None)
    (tmp_path / LINES).write_text(damage)
    assert furniture(texts, tmp_path) == expected
    assert "not read" in caplog.text
    assert set(json.loads((tmp_path / LINES).read_text())) == set(known_line_keys(texts))

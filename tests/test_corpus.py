"""Reading a corpus folder: which files count, titles, sidecar metadata."""

from __future__ import annotations

import json
import logging

import pytest

from qa_service.core.corpus import derive_title, read_corpus, read_sidecar


def test_reads_the_seed_articles_by_file_name(seed_articles, seed_texts):
    assert [article.name for article in seed_articles] == sorted(seed_texts)
    assert all(article.text == seed_texts[article.name] for article in seed_articles)


def test_seed_titles_come_from_headings_or_openings(seed_articles):
    titles = {article.name: article.title for article in seed_articles}
    assert titles["003_1650bec134086eef.txt"] == (
        "Microsoft’s LinkedIn Under Fire for Alleged Data Misuse for Training AI"
    )
    # 000 opens with a paragraph, not a heading: its first sentence names it.
    assert titles["000_b6702db7aca47a35.txt"] == (
        "LinkedIn is in hot waters over a lawsuit by its own premium subscribers"
    )


def test_skips_invalid_utf8_and_empty_files_with_a_warning(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("A fine article about courts.\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 society.".encode("latin-1"))
    (tmp_path / "empty.md").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "notes.csv").write_text("not,an,article\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        articles = read_corpus(tmp_path)
    assert [article.name for article in articles] == ["good.txt"]
    warnings = " ".join(record.getMessage() for record in caplog.records)
    assert "latin1.txt: not valid UTF-8" in warnings
    assert "empty.md: empty file" in warnings


def test_sidecar_metadata_overrides_the_title(tmp_path):
    (tmp_path / "story.txt").write_text("Some Heading\nBody text here.\n", encoding="utf-8")
    sidecar = {
        "title": "Real Title",
        "publisher": "Daily",
        "date": "2025-01-27",
        "url": "https://x.test/a",
    }
    (tmp_path / "story.json").write_text(json.dumps(sidecar), encoding="utf-8")
    (article,) = read_corpus(tmp_path)
    assert (article.title, article.publisher, article.date, article.url) == tuple(sidecar.values())


@pytest.mark.parametrize(
    ("sidecars", "titles"),
    [
        ({"x.txt.json": "T", "x.md.json": "M"}, {"x.txt": "T", "x.md": "M"}),
        ({"x.json": "Old"}, {"x.txt": "Old"}),
        ({"x.json": "Old"}, {"x.md": "Old"}),
        ({"x.json": "Old", "x.txt.json": "New"}, {"x.txt": "New"}),
        ({"x.json": "Old", "x.md.json": "M"}, {"x.txt": "Body", "x.md": "M"}),
        ({"x.json": "Old"}, {"x.txt": "Body", "x.md": "Body"}),
        ({"x.txt.json": "Of x.txt"}, {"x.txt.txt": "Body"}),
    ],
    ids=["one-each", "old-style-txt", "old-style-md", "new-style-first", "old-style-shared",
         "old-style-shared-by-both", "not-old-style"],
)  # fmt: skip
def test_each_article_has_its_own_sidecar(tmp_path, sidecars, titles):
    """`x.txt.json` is x.txt's and `x.md.json` x.md's; an old-style `x.json` counts only
    while one article alone could claim it."""
    for name in titles:
        (tmp_path / name).write_text("Body\n", encoding="utf-8")
    for name, title in sidecars.items():
        (tmp_path / name).write_text(json.dumps({"title": title}), encoding="utf-8")
    assert {article.name: article.title for article in read_corpus(tmp_path)} == titles


def test_a_broken_sidecar_is_ignored_with_a_warning(tmp_path, caplog):
    (tmp_path / "story.txt").write_text("Some Heading\nBody text here.\n", encoding="utf-8")
    (tmp_path / "story.json").write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        (article,) = read_corpus(tmp_path)
    assert article.title == "Some Heading"
    assert "story.json" in caplog.text


def test_nested_articles_are_named_by_relative_path(tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "os.md").write_text("# The os module\n\nIt does things.\n")
    (article,) = read_corpus(tmp_path)
    assert (article.name, article.title) == ("library/os.md", "The os module")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Markdown Title\n\nBody.", "Markdown Title"),
        ("Short Heading\nBody.", "Short Heading"),
        ("A first sentence. A second one.", "A first sentence"),
        ("word " * 60 + "end.", ("word " * 60)[:120].rsplit(" ", 1)[0] + "…"),
    ],
    ids=["markdown", "heading-line", "opening-sentence", "long-opening"],
)
def test_derive_title(text, title):
    assert derive_title(text) == title


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus folder not found"):
        read_corpus(tmp_path / "nope")


def test_symlinks_out_of_the_folder_are_never_read(tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The secret password is swordfish.\n")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "good.txt").write_text("A fine article about courts.\n")
    (seeds / "leak.txt").symlink_to(outside / "secret.txt")
    (seeds / "linked-dir").symlink_to(outside, target_is_directory=True)
    (seeds / "inside.txt").symlink_to(seeds / "good.txt")
    with caplog.at_level(logging.WARNING):
        articles = read_corpus(seeds)
    assert sorted(article.name for article in articles) == ["good.txt", "inside.txt"]
    assert all("swordfish" not in article.text for article in articles)
    assert "leak.txt: it points outside" in caplog.text


@pytest.mark.parametrize(
    ("url", "kept"),
    [("https://example.org/a", True), ("http://example.org/a", True),
     ("javascript:alert(1)", False), ("data:text/html,<b>x</b>", False),
     ("https://example.org/a\nb", False)],
    ids=["https", "http", "javascript", "data", "newline"],
)  # fmt: skip
def test_a_sidecar_url_is_kept_only_when_it_is_a_web_address(tmp_path, url, kept):
    article = tmp_path / "a.txt"
    article.write_text("Words.\n", encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps({"url": url, "title": "A"}), encoding="utf-8")
    assert read_sidecar(article) == ({"url": url, "title": "A"} if kept else {"title": "A"})

"""Find and read the articles of a corpus folder: text, title and sidecar metadata."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

# Flat names an article may be written under (the write API): no folders, no hidden
# files, a known suffix.
ARTICLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,126}\.(?:txt|md)")
# What a source's `url` may be: pages link to it, so nothing a browser would run. (No
# flags: the OpenAPI document shows the same pattern, in JavaScript's dialect.)
WEB_ADDRESS = re.compile(r"[hH][tT][tT][pP][sS]?://[^\s\x00-\x1f]+")

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")
TITLE_MAX_CHARS = 120
# A first line is a heading when it is short and does not end like a sentence.
_SENTENCE_END = re.compile(r"[.!?:;,…]['\"”’)\]]*$")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+")


@dataclass(frozen=True)
class Article:
    """One source file: its name relative to the corpus folder, its text and metadata."""

    name: str
    text: str
    title: str
    sha256: str
    publisher: str | None = None
    date: str | None = None
    url: str | None = None


def read_corpus(folder: Path | str) -> list[Article]:
    """Read every UTF-8 `.txt`/`.md` article under `folder`, sorted by name.

    Files that are empty or not valid UTF-8 are skipped with a warning.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {folder}")
    root = folder.resolve()
    articles = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in ARTICLE_SUFFIXES:
            continue
        if not path.resolve().is_relative_to(root):
            # A symlink must not smuggle files from elsewhere into the index (or the API).
            log.warning("skipping %s: it points outside %s", path, folder)
            continue
        article = read_article(path, path.relative_to(folder).as_posix())
        if article is not None:
            articles.append(article)
    return articles


def read_article(path: Path, name: str) -> Article | None:
    """Read one article, or return None (with a warning) when it cannot be used."""
    raw = path.read_bytes()
    try:
        # Plain UTF-8 (a byte-order mark stays a character) so offsets agree with
        # any reader that decodes the file the same standard way.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        log.warning("skipping %s: not valid UTF-8 (%s)", path, exc.reason)
        return None
    if not text.strip():
        log.warning("skipping %s: empty file", path)
        return None
    meta = read_sidecar(path)
    return Article(
        name=name,
        text=text,
        title=meta.get("title") or derive_title(text),
        sha256=hashlib.sha256(raw).hexdigest(),
        publisher=meta.get("publisher"),
        date=meta.get("date"),
        url=meta.get("url"),
    )


def sidecar_path(article: Path) -> Path:
    """Where an article's metadata is kept: its whole name and `.json` (`x.txt.json`)."""
    return article.with_name(article.name + ".json")


def old_style_sidecar(article: Path) -> Path | None:
    """`x.json` for `x.txt` or `x.md`: where their metadata were kept before each article
    had its own; None where that name is an article's own (`x.txt.json`, for `x.txt.txt`)."""
    old_style = article.with_suffix(".json")
    return None if Path(old_style.stem).suffix.lower() in ARTICLE_SUFFIXES else old_style


def legacy_sidecar(article: Path) -> Path | None:
    """The old-style sidecar an article reads its metadata from when it has no
    `sidecar_path`: only while no other article shares its stem (`x.txt` and `x.md`
    would both claim `x.json`, so neither reads it)."""
    siblings = [article.with_suffix(suffix) for suffix in ARTICLE_SUFFIXES]
    if any(sibling != article and sibling.is_file() for sibling in siblings):
        return None
    return old_style_sidecar(article)


def read_sidecar(path: Path) -> dict[str, str]:
    """Metadata from the article's sidecar (title, publisher, date, url), if any: `x.txt.json`,
    else an old-style `x.json` that no other article could claim (legacy_sidecar)."""
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        sidecar = legacy_sidecar(path)
        if sidecar is None or not sidecar.is_file():
            return {}
    if not sidecar.resolve().is_relative_to(path.resolve().parent):
        log.warning("ignoring %s: it points outside the article's folder", sidecar)
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring %s: not a valid UTF-8 JSON file (%s)", sidecar, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("ignoring %s: expected a JSON object", sidecar)
        return {}
    wanted = ("title", "publisher", "date", "url")
    found = {key: str(data[key]).strip() for key in wanted if data.get(key)}
    if "url" in found and not WEB_ADDRESS.fullmatch(found["url"]):
        # Pages link to it: a javascript: or data: address would run in a reader's browser.
        log.warning("ignoring the url of %s: not an http(s) address", sidecar)
        del found["url"]
    return found


def derive_title(text: str) -> str:
    """The first line when it reads as a heading, otherwise the opening words of the text."""
    first_line = next(line.strip() for line in text.splitlines() if line.strip())
    if _MARKDOWN_HEADING.match(first_line):
        return _MARKDOWN_HEADING.sub("", first_line)
    if len(first_line) <= TITLE_MAX_CHARS and not _SENTENCE_END.search(first_line):
        return first_line
    opening = re.split(r"(?<=[.!?])\s", first_line, maxsplit=1)[0]
    if len(opening) <= TITLE_MAX_CHARS:
        return opening.rstrip(".")
    return opening[:TITLE_MAX_CHARS].rsplit(" ", 1)[0] + "…"


# What a folder may say of itself (a reader's first look at the search page): a TOML file
# beside the articles, neither an article nor any article's sidecar.
ABOUT_FILE = "about.toml"
ABOUT_MAX_BYTES = 64 * 1024
ABOUT_EXAMPLES_MAX = 10


@dataclass(frozen=True)
class FolderAbout:
    """What the folder's about.toml says: a line on the articles, and questions they answer."""

    about: str | None = None
    examples: tuple[str, ...] = ()


def read_about(folder: Path | str) -> FolderAbout:
    """The folder's about.toml (`about = "…"`, `examples = ["…?", …]`), if it has a usable one."""
    path = Path(folder) / ABOUT_FILE
    try:
        with open(path, "rb") as file:
            raw = file.read(ABOUT_MAX_BYTES + 1)
    except OSError:  # none (the usual case), or unreadable
        return FolderAbout()
    try:
        if len(raw) > ABOUT_MAX_BYTES:
            raise ValueError(f"larger than {ABOUT_MAX_BYTES} bytes")
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return FolderAbout()
    about, examples = data.get("about"), data.get("examples", [])
    if not isinstance(examples, list):
        examples = []
    return FolderAbout(
        about=" ".join(about.split()) or None if isinstance(about, str) else None,
        examples=tuple(
            " ".join(question.split())
            for question in examples[:ABOUT_EXAMPLES_MAX]
            if isinstance(question, str) and question.strip()
        ),
    )

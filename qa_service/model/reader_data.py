"""Training pairs for the reader (question, passage, does the passage hold what was asked).

Built only from text made for this purpose or shipped in Debian packages, never
from the seed articles or any question set used for evaluation:

- written: articles the team wrote on other subjects and Debian documentation
  sections, with questions people would type and gold spans
  (qa_service/model/training/written/*/, their provenance in each SOURCE.md).
  Each question is asked of the service's own first stages over its corpus: the
  passages holding a gold span are positives, the other candidates the ranker
  returns are hard negatives, and an unanswerable question's candidates are all
  negatives (which teaches "no answer": nothing among them holds it). Each pair
  carries the ranker's score, so the reader can learn what the ranker misses.
- structure: Debian's policy manual, developers' reference and new
  maintainers' guide (packages debian-policy, developers-reference,
  maint-guide): a section's heading asked as a query, its opening passages
  positive, the best-matching passages of other sections negative.

    python -m qa_service.model.reader_data OUT.jsonl [--debian-docs FOLDER]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from qa_service.core.passages import split_passages
from qa_service.index import build_index, open_generation
from qa_service.retrieval import search
from qa_service.retrieval.evaluation import matches_gold

WRITTEN = Path(__file__).parent / "training" / "written"
STRUCTURE_PACKAGES = ("debian-policy", "developers-reference", "maint-guide")
# Candidates a question is read against: what the reader will see at run time, and more.
CANDIDATES = 12
# Negatives per positive from the structure, and passages per section taken as positive.
STRUCTURE_NEGATIVES = 3
SECTION_OPENING = 2
_NUMBERING = re.compile(r"^\s*(?:[A-Z]\.|\d+(?:\.\d+)*\.?)\s+")
_NOT_A_TOPIC = re.compile(
    r"(?:version|release|changes in|appendix|table of contents|previous topic|next topic"
    r"|navigation|this page|quick search)\b",
    re.IGNORECASE,
)


def written_pairs(folder: Path = WRITTEN, *, only: str | None = None) -> Iterator[dict]:
    """Pairs from every written set (or the one named `only`): positives and the ranker's
    hard negatives."""
    for written in sorted(p for p in folder.iterdir() if (p / "questions.jsonl").is_file()):
        if only is not None and written.name != only:
            continue
        with tempfile.TemporaryDirectory(prefix="qa-reader-") as index_dir:
            build_index(written / "articles", index_dir)
            generation = open_generation(index_dir)
            for line in (written / "questions.jsonl").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    yield from _question_pairs(generation, json.loads(line), written.name)


def _question_pairs(generation, question: dict, group: str) -> Iterator[dict]:
    analysed = search.analyse(generation, question["question"])
    ranked = search.rank(search.candidates(generation, analysed))[:CANDIDATES]
    labels = [
        any(matches_gold(c.passage.source, c.passage.start, c.passage.end, answer)
            for answer in question["answers"])
        for c in ranked
    ]  # fmt: skip
    for candidate, label in zip(ranked, labels, strict=True):
        yield _pair(
            question["question"],
            candidate.passage.text,
            label,
            f"{group}/{question['id']}",
            score=candidate.score,
        )


def _pair(question: str, passage: str, label: bool, group: str, score: float = 0.0) -> dict:
    """A training pair; `score` is the ranker's for the passage (0 where no ranker chose it)."""
    return {
        "question": question,
        "passage": passage,
        "label": int(label),
        "group": group,
        "score": round(score, 4),
    }


class _Sections(HTMLParser):
    """An HTML manual's sections: (heading, text of its paragraphs and list items)."""

    _HEADINGS = {"h1", "h2", "h3", "h4"}
    _SKIPPED = {"pre", "script", "style", "nav", "table"}

    def __init__(self):
        super().__init__()
        self.sections: list[tuple[str, list[str]]] = []
        self._heading: list[str] | None = None
        self._text: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._HEADINGS:
            self._heading = []
        elif tag in {"p", "li", "dd", "dt"}:
            self._text = []

    def handle_endtag(self, tag):
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._HEADINGS and self._heading is not None:
            heading = " ".join("".join(self._heading).replace("\u00b6", "").split())
            self.sections.append((_NUMBERING.sub("", heading), []))
            self._heading = None
        elif tag in {"p", "li", "dd", "dt"} and self.sections:
            text = " ".join("".join(self._text).split())
            if len(text) > 20:
                self.sections[-1][1].append(text)
            self._text = []

    def handle_data(self, data):
        if self._skipping:
            return
        if self._heading is not None:
            self._heading.append(data)
        else:
            self._text.append(data)


def structure_pairs(folder: Path, rng: random.Random) -> Iterator[dict]:
    """Heading → section pairs from the HTML manuals under `folder`."""
    sections, seen = [], set()
    for page in sorted(p for p in folder.rglob("*.html") if p.is_file()):
        parser = _Sections()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for heading, paragraphs in parser.sections:
            words = heading.split()
            # A manual is shipped whole and page by page: each section once. Release
            # notes ("Version 3.2.1") name no topic.
            if not 2 <= len(words) <= 10 or not paragraphs or _NOT_A_TOPIC.match(heading):
                continue
            passages = [p.text for p in split_passages("\n\n".join(paragraphs), page.name)]
            if passages and (heading, passages[0]) not in seen:
                seen.add((heading, passages[0]))
                sections.append((heading, passages))
    # A heading several sections share ("Specific Options") names no one topic.
    counts = Counter(heading for heading, _ in sections)
    sections = [(heading, passages) for heading, passages in sections if counts[heading] == 1]
    for number, (heading, passages) in enumerate(sections):
        others = [p for n, (_, texts) in enumerate(sections) if n != number for p in texts[:3]]
        for positive in passages[:SECTION_OPENING]:
            yield _pair(heading, positive, True, f"structure/{number}")
            for negative in rng.sample(others, min(STRUCTURE_NEGATIVES, len(others))):
                yield _pair(heading, negative, False, f"structure/{number}")


def debian_docs(folder: Path) -> Path:
    """The three manuals' packages downloaded and unpacked under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *STRUCTURE_PACKAGES], cwd=folder, check=True)
    for deb in folder.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "unpacked")], check=True)
    return folder / "unpacked" / "usr" / "share" / "doc"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--debian-docs", type=Path, help="unpacked manuals (default: download)")
    args = parser.parse_args()
    rng = random.Random(13)
    with tempfile.TemporaryDirectory(prefix="qa-reader-docs-") as scratch:
        docs = args.debian_docs or debian_docs(Path(scratch))
        pairs = [*written_pairs(), *structure_pairs(docs, rng)]
    with open(args.out, "w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
    positives = sum(pair["label"] for pair in pairs)
    print(f"{len(pairs)} pairs ({positives} positive) in {args.out}")


if __name__ == "__main__":
    main()

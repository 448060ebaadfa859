"""The question sets that answer quality is measured on, and what each is used for.

- questions: the project's first 30 questions over the seeds. Held out: no
  constant is fitted on them since the learned ranker, so they measure it.
- dev3: 90 more questions over the seeds, 14 unanswerable. Held out.
- dev2: 70 questions over the seeds, by kind, many paraphrased, 10 unanswerable.
- debfaq: the Debian FAQ's own question headings over its text with the
  headings removed (a second, technical corpus; built from the Debian package).
- news-a, news-b, news-c, debian-docs: the sets the team wrote to train the
  reader (qa_service/model/training/written/, provenance in each SOURCE.md):
  677 questions as people type them over fictional news articles on other
  subjects and Debian documentation, 92 of them on-topic but unanswerable.
  Corpora of other kinds than the seeds, so they show what the ranker does on
  articles it was not fitted on. Not fitted on: adding them to the fit traded
  the seeds' sets for their own (docs/ranking.md).

The ranker's weights and the answerability threshold are fitted on dev2 and
debfaq (benchmarks/fit.py), with leave-one-set-out cross-validation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qa_service.core.passages import Passage
from qa_service.index import build_index, open_generation
from qa_service.retrieval.evaluation import matches_gold
from qa_service.retrieval.store import PassageStore

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
WRITTEN = ROOT / "qa_service" / "model" / "training" / "written"
# Where the Debian FAQ corpus is built (not committed: `make eval-data` builds it).
DEBIAN_FAQ = Path(os.environ.get("QA_DEBIAN_FAQ", ROOT / ".eval" / "debfaq"))


@dataclass(frozen=True)
class QuestionSet:
    """Questions with gold spans over one corpus, and how a passage is matched to the gold."""

    name: str
    corpus: Path
    questions: Path
    match: str  # "cover" or "within" (qa_service.retrieval.evaluation.MATCH_RULES)
    fitted: bool  # whether the ranker's constants were fitted on it


def question_sets() -> list[QuestionSet]:
    """Every set, the Debian FAQ built first when it is missing."""
    seeds = ROOT / "seeds"
    return [
        QuestionSet("questions", seeds, DATA / "questions.jsonl", "cover", fitted=False),
        QuestionSet("dev3", seeds, DATA / "dev3.jsonl", "cover", fitted=False),
        QuestionSet("dev2", seeds, DATA / "dev2.jsonl", "cover", fitted=True),
        QuestionSet(
            "debfaq", build_debian_faq() / "corpus", DEBIAN_FAQ / "questions.jsonl", "within",
            fitted=True,
        ),
        *(
            QuestionSet(name, WRITTEN / name / "articles", WRITTEN / name / "questions.jsonl",
                        "cover", fitted=False)
            for name in ("news-a", "news-b", "news-c", "debian-docs")
        ),
    ]  # fmt: skip


def answers(question_set: QuestionSet, question: dict, passage: Passage) -> bool:
    """Whether `passage` answers one of the question's gold spans, by the set's rule."""
    return any(
        matches_gold(passage.source, passage.start, passage.end, gold, question_set.match)
        for gold in question["answers"]
    )


def build_debian_faq(folder: Path = DEBIAN_FAQ) -> Path:
    """Build the Debian FAQ benchmark into `folder` (downloads the debian-faq package once)."""
    if (folder / "questions.jsonl").is_file():
        return folder
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(["apt-get", "download", "debian-faq"], cwd=download, check=True)
        (package,) = Path(download).glob("debian-faq_*.deb")
        subprocess.run(
            [sys.executable, str(DATA / "debfaq_build.py"), str(package), str(folder)], check=True
        )
    return folder


def open_indexes(sets: list[QuestionSet], folder: Path) -> dict[Path, PassageStore]:
    """Build under `folder` and open one index per corpus of `sets`, by corpus folder."""
    generations: dict[Path, PassageStore] = {}
    for question_set in sets:
        if question_set.corpus not in generations:
            index = Path(folder) / str(len(generations))
            build_index(question_set.corpus, index)
            generations[question_set.corpus] = open_generation(index)
    return generations

"""What the home page offers a first-time reader: what the articles are about, and
questions they answer — drawn from the articles themselves, so any folder has them.

The subjects are the phrases most articles share (the more articles use a phrase,
the more it is what the folder is about); the example questions are the
questions the articles themselves ask (an FAQ's headings) and, failing those,
questions about those subjects. Each example is asked before it is offered and
kept only when the service answers it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

from whoosh.analysis import STOP_WORDS

from .search import ask
from .store import PassageStore

# Enough articles to see what a folder is about, few enough to read once per generation
# on any engine (they are read in name order, so the same ones every time).
ARTICLES_READ = 200
# A question line as people write them: a capital, some words, a question mark.
_QUESTION_LINE = re.compile(r"^\s*(?:[#*\d.)\s]+)?([A-Z][^\n?]{10,100}\?)\s*$", re.MULTILINE)
_WORD = re.compile(r"[^\W\d_][\w’'-]*")
# Words that neither begin nor end a subject ("the", "its", "also", "said", …).
_EDGE_WORDS = STOP_WORDS | frozenset(
    "also its their his her our your said says according about after over more most other "
    "such only than then there these those which while would could should however see has "
    "have had been was were will can may must like".split()
)
_PHRASE_WORDS = (1, 2, 3)


def subjects(texts: Iterable[str], limit: int = 5) -> list[str]:
    """The phrases most of the texts share, most shared first, as the texts spell them."""
    shared: Counter[str] = Counter()
    used: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    texts = list(texts)
    for text in texts:
        found = Counter(_phrases(text))
        for phrase, count in found.items():
            key = phrase.lower()
            shared[key] += 1
            used[key] += count
            spellings.setdefault(key, Counter())[phrase] += count
    # Shared by the most articles first; among those, a longer phrase says more.
    ranked = sorted(
        (
            key
            for key in shared
            if (shared[key] > 1 or len(texts) == 1)
            # A lone word names a subject when it is a name ("LinkedIn"), not "data".
            and (" " in key or not spellings[key].most_common(1)[0][0].islower())
        ),
        key=lambda key: (-shared[key] * math.log1p(used[key]) * len(key.split()), key),
    )
    chosen: list[str] = []
    for key in ranked:
        # "Stored Communications Act" and "federal Stored Communications" are one subject.
        if any(set(key.split()) & set(other.split()) for other in chosen):
            continue
        chosen.append(key)
        if len(chosen) == limit:
            break
    return [spellings[key].most_common(1)[0][0] for key in chosen]


def example_questions(generation: PassageStore, texts: list[str], limit: int = 3) -> list[str]:
    """Questions the articles answer: their own question lines, else about their subjects
    (`texts`: article_texts of the generation)."""
    asked_by_articles = list(
        dict.fromkeys(
            match.group(1).strip() for text in texts for match in _QUESTION_LINE.finditer(text)
        )
    )
    about = [f"What do the articles say about {subject}?" for subject in subjects(texts, 2 * limit)]
    examples: list[str] = []
    for question in [*asked_by_articles[: 4 * limit], *about]:
        if len(examples) == limit:
            break
        if ask(generation, question, k=1).answerable:
            examples.append(question)
    return examples


def about_line(texts: list[str]) -> str | None:
    """The folder's subjects in one line ("What the articles share most: LinkedIn, …")."""
    found = subjects(texts)
    return f"What the articles share most: {', '.join(found)}." if found else None


def article_texts(generation: PassageStore) -> list[str]:
    """The texts of the articles the overview reads (at most ARTICLES_READ, by name)."""
    names = sorted(generation.sources)[:ARTICLES_READ]
    return [source.text for name in names if (source := generation.sources.get(name))]


def _phrases(text: str) -> Iterable[str]:
    """Every run of one to three words in a sentence that neither begins nor ends on a
    word like "the"."""
    for sentence in re.split(r"[.!?;:()\[\]\n]+\s*", text):
        words = _WORD.findall(sentence)
        for size in _PHRASE_WORDS:
            for first in range(len(words) - size + 1):
                run = words[first : first + size]
                if (
                    run[0].lower() in _EDGE_WORDS
                    or run[-1].lower() in _EDGE_WORDS
                    or len(run[0]) < 3
                    or len(run[-1]) < 3
                    # A sentence's first word is capitalised whatever it is.
                    or (size == 1 and first == 0)
                    # Inside, only "of" joins the words of a subject ("breach of contract").
                    or any(word.lower() in _EDGE_WORDS - {"of"} for word in run[1:-1])
                ):
                    continue
                yield " ".join(run)

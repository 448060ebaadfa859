"""Which passages in other sources state the same fact, and where they disagree.

Two passages state the same fact when one of their sentences is close to one of
the other's: the cosine of their tf-idf vectors over analysed terms. Near-copies
(the same quotation in two articles) are flagged so the answer list can fold
them into one entry. Two sentences about the same thing that carry different
dates or amounts are a conflict: "September 18, 2023" against "September 2024".
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass

from .passages import Passage, Token

# A sentence this close to one in another source states the same fact.
SAME_FACT = 0.3
# Sentences that carry dates or amounts may share fewer words and still be about
# the same event; below this they are not compared for conflicts.
COMPARABLE = 0.15
# Share of distinct words two passages must share to count as copies.
NEAR_COPY = 0.6
# Terms in more sentences than this say little about which fact a sentence states.
MAX_TERM_SENTENCES = 200
# The closest passages kept per passage: enough to cite, bounded for large corpora.
MAX_LINKS = 8


@dataclass(frozen=True)
class Link:
    """Another source's passage close to this one, and where their closest sentences disagree."""

    other: int
    similarity: float
    near_copy: bool
    # (kind, as this passage says it, as the other says it) for each conflicting value.
    conflicts: tuple[tuple[str, str, str], ...] = ()


def links_as_rows(links: Sequence[Link]) -> list[list]:
    """A passage's links as JSON-ready rows (how every engine stores them)."""
    return [
        [link.other, round(link.similarity, 4), link.near_copy, link.conflicts] for link in links
    ]


def links_from_rows(rows: Sequence[Sequence]) -> list[Link]:
    """The links `links_as_rows` stored, once read back from JSON."""
    return [
        Link(other, similarity, copy, tuple(map(tuple, conflicts)))
        for other, similarity, copy, conflicts in rows
    ]


@dataclass(frozen=True)
class Value:
    """A date or an amount of money stated in a text."""

    kind: str  # "date" or "amount"
    text: str
    # Comparable parts: (month, day, year) for dates, (amount,) for money; None unknown.
    parts: tuple


def link_passages(
    passages: Sequence[Passage],
    tokens: Sequence[Sequence[Token]],
    idf: Callable[[str], float],
) -> list[list[Link]]:
    """For each passage, the closest passages of other sources (a sentence at least COMPARABLE).

    Links are kept per passage (at most MAX_LINKS), so A may list B while B,
    having closer passages, does not list A.
    """
    # Sentences numbered source by source (in order of first appearance), so that the
    # sentences of other sources after one are the tail of any list in that order.
    group = {source: rank for rank, source in enumerate(dict.fromkeys(p.source for p in passages))}
    by_source = sorted(range(len(passages)), key=lambda number: group[passages[number].source])
    sentences = []  # (passage number, span, unit vector)
    last_of_source = {}  # the index of each source's last sentence
    for number in by_source:
        for span in passages[number].sentences:
            terms = Counter(t.term for t in tokens[number] if span[0] <= t.start < span[1])
            last_of_source[passages[number].source] = len(sentences)
            sentences.append((number, span, _unit_vector(terms, idf)))
    # Per term, the sentences holding it in order, and its weight in each.
    holders: dict[str, list[int]] = defaultdict(list)
    weights: dict[str, list[float]] = defaultdict(list)
    for index, (_, _, vector) in enumerate(sentences):
        for term, weight in vector.items():
            holders[term].append(index)
            weights[term].append(weight)
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    for index, (number, _, vector) in enumerate(sentences):
        scores: dict[int, float] = defaultdict(float)
        for term, weight in vector.items():
            held = holders[term]
            if len(held) > MAX_TERM_SENTENCES:
                continue
            # Each pair once, and never two sentences of one source.
            first = bisect.bisect_right(held, last_of_source[passages[number].source])
            for other, other_weight in zip(held[first:], weights[term][first:], strict=True):
                scores[other] += weight * other_weight
        for other, similarity in scores.items():
            pair = (number, sentences[other][0])
            if similarity >= COMPARABLE and similarity > best.get(pair, (0.0,))[0]:
                best[pair] = (similarity, index, other)
    closest: list[list[tuple[float, int, int, int]]] = [[] for _ in passages]
    for (a, b), (similarity, index_a, index_b) in best.items():
        closest[a].append((similarity, b, index_a, index_b))
        closest[b].append((similarity, a, index_b, index_a))

    @functools.cache
    def words(number: int) -> frozenset[str]:
        return frozenset(_words(passages[number].text))

    @functools.cache
    def sentence_text(index: int) -> str:
        number, (start, end), _ = sentences[index]
        passage = passages[number]
        return passage.text[start - passage.start : end - passage.start]

    def conflicts(mine: int, theirs: int, similarity: float) -> tuple:
        """Conflicting values between two linked sentences, as (kind, mine, theirs)."""
        texts = sentence_text(mine), sentence_text(theirs)
        # Every date that can conflict has a day or a year, and every amount a digit.
        if not all(_DIGIT.search(text) for text in texts):
            return ()
        pairs = conflicting_values(*texts, amounts=similarity >= SAME_FACT)
        return tuple((a.kind, a.text, b.text) for a, b in pairs)

    links = []
    for number, candidates in enumerate(closest):
        candidates.sort(reverse=True)
        links.append(
            [
                Link(
                    other,
                    similarity,
                    _shares_most(words(number), words(other)),
                    conflicts(mine, theirs, similarity),
                )
                for similarity, other, mine, theirs in candidates[:MAX_LINKS]
            ]
        )
    return links


def _unit_vector(terms: Counter, idf: Callable[[str], float]) -> dict[str, float]:
    vector = {term: (1 + math.log(count)) * idf(term) for term, count in terms.items()}
    norm = math.sqrt(sum(weight * weight for weight in vector.values())) or 1.0
    return {term: weight / norm for term, weight in vector.items()}


def near_copy(text: str, other: str) -> bool:
    """Whether two texts share most of their distinct words (a copied quotation)."""
    return _shares_most(frozenset(_words(text)), frozenset(_words(other)))


def _shares_most(words: Set[str], other_words: Set[str]) -> bool:
    union = words | other_words
    return bool(union) and len(words & other_words) / len(union) >= NEAR_COPY


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


_DIGIT = re.compile(r"\d")
_MONTHS = "january february march april may june july august september october november december"
_MONTH_NUMBER = {name[:3]: number for number, name in enumerate(_MONTHS.split(), start=1)}
_DATE = re.compile(
    r"\b(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
    r"(?:\s+(?P<day>\d{1,2})(?!\d))?(?:,?\s+(?:of\s+)?(?P<year>(?:19|20)\d\d))?\b",
    re.IGNORECASE,
)
_MONEY = re.compile(
    r"[$€£]\s?(?P<number>\d[\d,]*(?:\.\d+)?)(?:\s?(?P<scale>thousand|million|billion|trillion)\b)?",
    re.IGNORECASE,
)
_SCALE = {None: 1, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}


def values_in(text: str) -> list[Value]:
    """The dates (with a month) and amounts of money stated in `text`."""
    values = []
    for match in _DATE.finditer(text):
        if match.group("month").lower() == "may" and not (match["day"] or match["year"]):
            continue  # "may" is far more often a verb than a month
        month = _MONTH_NUMBER[match.group("month").lower()[:3]]
        day = int(match["day"]) if match["day"] else None
        year = int(match["year"]) if match["year"] else None
        values.append(Value("date", match.group().strip(), (month, day, year)))
    for match in _MONEY.finditer(text):
        amount = (
            float(match["number"].replace(",", "")) * _SCALE[(match["scale"] or "").lower() or None]
        )
        values.append(Value("amount", match.group().strip(), (amount,)))
    return values


def conflicting_values(text: str, other: str, *, amounts: bool) -> list[tuple[Value, Value]]:
    """Pairs of values the two texts state differently for what reads as the same fact.

    Dates conflict when they name the same month but different years (or, in
    the same year, different days); with `amounts`, amounts of money conflict
    when the texts share none.
    """
    mine, theirs = values_in(text), values_in(other)
    found = []
    for value in mine:
        if value.kind == "date":
            month, day, year = value.parts
            for other_value in theirs:
                if other_value.kind != "date" or other_value.parts[0] != month:
                    continue
                _, other_day, other_year = other_value.parts
                years_differ = bool(year and other_year and year != other_year)
                days_differ = year == other_year and day and other_day and day != other_day
                if years_differ or days_differ:
                    found.append((value, other_value))
    if not amounts:
        return found
    my_amounts = {v.parts for v in mine if v.kind == "amount"}
    their_amounts = [v for v in theirs if v.kind == "amount"]
    if my_amounts and their_amounts and not my_amounts & {v.parts for v in their_amounts}:
        first = next(v for v in mine if v.kind == "amount")
        found.append((first, their_amounts[0]))
    return found

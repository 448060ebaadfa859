"""Spelling suggestions ("did you mean"): misspelt words respelt as words the articles use.

A word is taken for a misspelling only when the articles lack it *and* it is no
English word (wordfreq's list, which also holds common names and brands), so
"weather", "statute" or "World" are never turned into "whether", "state" or
"would". A suggestion that is only another form of the word ("inmails" ->
"inmail") is dropped: the index stems both to one term, so it would find the
same passages.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import simplemma
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein
from whoosh.lang import stemmer_for_language

from .analysis import WORD
from .store import PassageStore

# Shorter words are names and acronyms ("CEO", "Meta") more often than typos.
MIN_LETTERS = 5
# No English word the corrector could fix is longer; its cost grows with the length.
MAX_LETTERS = 20
# A question with more unknown words than this is in another language, code or
# noise, not a typo: offer nothing rather than pay one corrector walk a word.
MAX_UNKNOWN_WORDS = 3

_stem = stemmer_for_language("en")


def closest_word(word: str, words: Sequence[str], frequencies: Sequence[float]) -> str | None:
    """The nearest of `words` to `word` within one edit (two from seven letters), then the
    most frequent; None when none is that close.

    rapidfuzz measures the distances in C++: Whoosh's corrector, in Python, took up
    to 80 ms a word over the 32,000 words of the Linux kernel documentation (now 1 ms).
    """
    matches = process.extract(
        word,
        words,
        scorer=DamerauLevenshtein.distance,
        score_cutoff=1 if len(word) < 7 else 2,
        limit=None,
    )
    if not matches:
        return None
    _, _, best = min(matches, key=lambda match: (match[1], -frequencies[match[2]], match[0]))
    return words[best]


def respell(generation: PassageStore, question: str) -> str | None:
    """The question with its misspelt words replaced by the closest the articles use, or None."""
    words = dict.fromkeys(match.group().lower() for match in WORD.finditer(question))
    possible = [word for word in words if MIN_LETTERS <= len(word) <= MAX_LETTERS]
    used = generation.known_words(possible) if possible else set()
    # Could be misspelt: neither the articles nor English use it.
    unknown = [word for word in possible if word not in used and not is_english(word)]
    if len(unknown) > MAX_UNKNOWN_WORDS:
        return None
    corrections = {}
    for word in unknown:
        suggestion = closest_word(word, *generation.words_like(word))
        if suggestion and not same_word(word, suggestion):
            corrections[word] = suggestion
    if not corrections:
        return None

    def replace(match: re.Match) -> str:
        written = match.group()
        suggestion = corrections.get(written.lower())
        return written if suggestion is None else _cased_as(written, suggestion)

    return WORD.sub(replace, question)


def correction(generation: PassageStore, word: str) -> str | None:
    """The articles' closest word to a lower-cased word, or None when they use it or
    nothing close to it."""
    if generation.known_words([word]):
        return None
    return closest_word(word, *generation.words_like(word))


def is_english(word: str) -> bool:
    """Whether wordfreq lists the word in English at all.

    No higher threshold: common misspellings ("recieved" 2.8, "goverment" 2.7
    on the Zipf scale) are as frequent as real legal terms ("estoppel" 2.3,
    "laches" 1.7), so any cut-off above zero would "correct" real words.
    """
    return _zipf_frequency()(word, "en") > 0


@functools.cache
def _zipf_frequency() -> Callable[[str, str], float]:
    # Imported on first need, once per process: the import takes about 80 ms and
    # the first lookup about 80 ms more (it reads the English list), and most
    # questions use only words the articles use, so never get here.
    from wordfreq import zipf_frequency

    return zipf_frequency


def same_word(word: str, other: str) -> bool:
    """Whether two lower-cased words are forms of one word: same stem, lemma, or index term."""
    lemma, other_lemma = simplemma.lemmatize(word, lang="en"), simplemma.lemmatize(other, lang="en")
    return _stem(word) == _stem(other) or lemma == other_lemma or _stem(lemma) == _stem(other_lemma)


def _cased_as(written: str, word: str) -> str:
    """`word` in the case the question wrote its misspelling: "Linkdin" -> "Linkedin"."""
    if len(written) > 1 and written.isupper():
        return word.upper()
    if written[0].isupper():
        return word[0].upper() + word[1:]
    return word

"""Paragraphs to sentences: a paragraph's span split where a sentence ends, past
abbreviations ("Dr.", "U.S.", "No. 5") and full stops followed by lower case, each
sentence trimmed, as offsets into the text.
"""

from __future__ import annotations

import re

from .layout import trim

# Punctuation that may end a sentence, and the quotes/brackets that may close it.
_SENTENCE_END = re.compile(r"[.!?…]+['\"”’)\]]*\s+")
# Words that end in a period without ending a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt inc ltd co corp llc plc dept univ gov sen rep gen
    approx est vs jan feb mar apr jun jul aug sep sept oct nov dec cal
    e.g i.e cf al""".split()
)
# Abbreviations only when a number follows ("No. 5"); otherwise ordinary words ("said no.").
_NUMBER_ABBREVIATIONS = frozenset("no nos vol fig pp sec art".split())


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split text[start:end] into trimmed sentence spans, dropping ones without letters."""
    spans = []
    sentence_start = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if _ends_sentence(text, sentence_start, match):
            spans.append((sentence_start, match.end()))
            sentence_start = match.end()
    spans.append((sentence_start, end))
    trimmed = (trim(text, s, e) for s, e in spans)
    return [(s, e) for s, e in trimmed if any(char.isalpha() for char in text[s:e])]


def _ends_sentence(text: str, sentence_start: int, match: re.Match) -> bool:
    """A candidate boundary ends a sentence unless an abbreviation or lower case says not."""
    following = text[match.end() : match.end() + 1]
    if following and following.islower():
        return False
    punct = match.group().rstrip()
    if not punct.startswith("."):
        return True
    word = text[sentence_start : match.start()].rsplit(None, 1)[-1:]
    if not word:
        return True
    word = word[0].lstrip("(\"'“‘[").lower()
    if word in _NUMBER_ABBREVIATIONS:
        return not following.isdigit()
    # "U.S." and single initials ("J.") are abbreviations, as are the listed words.
    return not ("." in word or (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS)

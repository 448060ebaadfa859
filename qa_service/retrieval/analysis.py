"""Text analysis, one place for passages and questions: words to the terms the index holds.

Every backend indexes the terms made here, so its ranking features (coverage,
idf, highlights) are the same whatever engine stores them.
"""

from __future__ import annotations

import re
from importlib.metadata import version

import simplemma
from whoosh.analysis import (
    STOP_WORDS,
    Filter,
    LowercaseFilter,
    RegexTokenizer,
    StemFilter,
    StopFilter,
)

from qa_service.core.passages import Passage, Token

# Part of every index's content hash: the same words must give the same terms.
ANALYSIS_VERSION = f"analysis=1;simplemma={version('simplemma')};whoosh={version('whoosh')}"


class DigitGroupFilter(Filter):
    """Drop thousands separators so "$1,000" and "$1000" index the same term."""

    def __call__(self, tokens):
        for token in tokens:
            if "," in token.text:
                token.text = token.text.replace(",", "")
            yield token


class LemmaFilter(Filter):
    """Reduce words to their dictionary form first, so "sought" meets "seeks" and "paid" "pay"."""

    def __call__(self, tokens):
        for token in tokens:
            token.text = simplemma.lemmatize(token.text, lang="en")
            yield token


def make_analyzer(stoplist: frozenset[str] = STOP_WORDS):
    """Words and numbers (with their separators), lower-cased, stop words out, stemmed."""
    tokenizer = RegexTokenizer(r"\d+(?:[.,]\d+)*|\w+(?:\.\w+)*")
    stop = StopFilter(stoplist=stoplist)
    # Snowball (Porter2) stems more consistently than Porter: alleges/allegedly -> alleg.
    return (
        tokenizer
        | LowercaseFilter()
        | DigitGroupFilter()
        | stop
        | LemmaFilter()
        | StemFilter(lang="en")
    )


ANALYZER = make_analyzer()
# Whole words as written (lower-cased): what spelling suggestions are drawn from.
WORD = re.compile(r"[^\W\d_]{2,}")
WORDS_ANALYZER = RegexTokenizer(WORD.pattern) | LowercaseFilter()


def passage_tokens(passage: Passage) -> tuple[Token, ...]:
    """The analysed terms of a passage with the source offsets of their words."""
    # Whoosh reuses one token object while analysing: copy what we need at once.
    return tuple(
        Token(token.text, passage.start + token.startchar, passage.start + token.endchar)
        for token in ANALYZER(passage.text, chars=True)
    )


# Words that shape a question but say nothing about its subject.
QUESTION_WORDS = frozenset(
    """what which who whom whose when where why how whether does do did doing done
    was were been being has had having is are am there their they them it its any
    some about much many tell please would could should shall might must i me my""".split()
)
QUERY_ANALYZER = make_analyzer(STOP_WORDS | QUESTION_WORDS)
# Phrases that only frame the question; the answer type stands for them.
FRAMING = re.compile(
    r"\bhow\s+(?:long|many|much|big|large|often|high)\b"
    r"|\bwhat\s+(?:kind|type|sort)s?\s+of\b"
    r"|\b(?:happen(?:s|ed|ing)?|take\s+place)\b",
    re.IGNORECASE,
)


def query_terms(question: str) -> list[str]:
    """The distinct analysed terms of a question, in order; query syntax is plain text."""
    content = FRAMING.sub(" ", question)
    return list(dict.fromkeys(token.text for token in QUERY_ANALYZER(content)))

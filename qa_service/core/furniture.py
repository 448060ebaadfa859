"""A corpus's site furniture: the lines its articles share although they otherwise differ
(a site's footer, its bylines, "Photos by ..."), left out of the passages.

A line counts once per *content*, not per file: articles with the same lines are one
content, and a line shared only by copies of one another (a syndicated story published
twice, a page saved again with a note added) is their text, never furniture. Two
articles are copies when at least COPY_SHARE of the lines of the one with fewer are
also the other's; a line is furniture when two of the contents holding it are not
copies. Whether a line is furniture thus depends only on the articles holding it,
which is what lets a write's layer (index/build.py) find the articles whose passages a
change of the furniture moves.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence

from .layout import line_key, logical_lines

# Longer lines are article text even when two articles share them (a syndicated
# paragraph), never page furniture.
MAX_BOILERPLATE_CHARS = 200
# Articles sharing three in four of the lines of the shorter one are copies: a story
# and its reprint with a line added. Two stories of one site share their furniture
# (a few lines) and differ in the rest.
COPY_SHARE = 0.75
# The articles' lines kept between builds, in characters: each write reads every
# article's lines, and works out only those of articles it has not met (a process's
# first build, all of them: about 5 s for the Python docs' 12 MB, unless they were
# kept on disk: index/kept.py).
CACHED_CHARS = 64_000_000


def line_keys(text: str) -> frozenset[str]:
    """An article's distinct lines as compared across articles: its logical lines with a
    letter, trimmed, runs of whitespace made one space."""
    return _CACHE.line_keys(text)


def known_line_keys(texts: Iterable[str]) -> dict[str, frozenset[str]]:
    """The line keys of these texts by their digest (hex), as `remember_line_keys` takes
    them back (in another process, after this one's build)."""
    return {_digest(text).hex(): line_keys(text) for text in texts}


def remember_line_keys(known: dict[str, Iterable[str]]) -> None:
    """Take line keys `known_line_keys` gave, so their texts are not worked out again."""
    for digest, keys in known.items():
        _CACHE.remember(bytes.fromhex(digest), frozenset(keys))


class _LineCache:
    """Articles' line keys by the SHA-256 of their text, the least recently used dropped
    beyond CACHED_CHARS characters of keys (the texts themselves are not kept)."""

    def __init__(self, limit: int):
        self._limit, self._chars = limit, 0
        self._entries: OrderedDict[bytes, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def line_keys(self, text: str) -> frozenset[str]:
        digest = _digest(text)
        with self._lock:
            if digest in self._entries:
                self._entries.move_to_end(digest)
                return self._entries[digest]
        lines = (line_key(text[line.start : line.end]) for line in logical_lines(text))
        keys = frozenset(key for key in lines if any(char.isalpha() for char in key))
        self.remember(digest, keys)
        return keys

    def remember(self, digest: bytes, keys: frozenset[str]) -> None:
        with self._lock:
            if digest not in self._entries:
                self._entries[digest] = keys
                self._chars += _size(keys)
            while self._chars > self._limit:
                self._chars -= _size(self._entries.popitem(last=False)[1])


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _size(keys: frozenset[str]) -> int:
    return sum(map(len, keys))


_CACHE = _LineCache(CACHED_CHARS)


def furniture_lines(texts: Iterable[str]) -> frozenset[str]:
    """The lines that articles otherwise different share: the sites' furniture."""
    return furniture_of(line_keys(text) for text in texts)


def furniture_of(articles_lines: Iterable[frozenset[str]]) -> frozenset[str]:
    """`furniture_lines` from the articles' `line_keys`."""
    # Articles with the same lines are one content (dict keeps the first of each).
    contents = list(dict.fromkeys(articles_lines))
    holders: dict[str, list[int]] = defaultdict(list)
    for number, keys in enumerate(contents):
        for key in keys:
            if len(key) <= MAX_BOILERPLATE_CHARS:
                holders[key].append(number)
    copies = _Copies(contents)
    return frozenset(
        key
        for key, held in holders.items()
        if len(held) > 1 and not all(itertools.starmap(copies, itertools.combinations(held, 2)))
    )


class _Copies:
    """Whether two contents are copies of one another, each pair worked out once."""

    def __init__(self, contents: Sequence[frozenset[str]]):
        self._contents = contents
        self._known: dict[tuple[int, int], bool] = {}

    def __call__(self, first: int, second: int) -> bool:
        if (first, second) not in self._known:
            one, other = self._contents[first], self._contents[second]
            shared = len(one & other)
            self._known[first, second] = shared >= COPY_SHARE * min(len(one), len(other))
        return self._known[first, second]

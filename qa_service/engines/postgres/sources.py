"""A PostgreSQL generation's articles: names, metadata and texts, read when asked for."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from qa_service.core.results import SourceDocument

from .cache import BoundedCache
from .reader import Reader
from .schema import storable


class Sources(Mapping):
    """The articles by name, their texts read when asked for (a cache of `budget` bytes)."""

    def __init__(self, reader: Reader, budget: int):
        self._reader = reader
        self._cache = BoundedCache(budget, lambda source: sys.getsizeof(source.text))

    def _names(self) -> list[str]:
        return [row[0] for row in self._reader.query(
            f"SELECT name FROM {self._reader.schema}.sources ORDER BY ordinal"
        )]  # fmt: skip

    def __getitem__(self, name: str) -> SourceDocument:
        if (cached := self._cache.recall(name)) is not None:
            return cached
        if not storable(name):
            raise KeyError(name)
        rows = self._reader.query(
            "SELECT name, title, publisher, date, url, passages, text, sha256"
            f" FROM {self._reader.schema}.sources WHERE name = %s",
            (name,),
        )
        if not rows:
            raise KeyError(name)
        names = ("name", "title", "publisher", "date", "url", "passages", "text", "sha256")
        fields = dict(zip(names, rows[0], strict=True))
        return self._cache.remember(name, SourceDocument(**fields))

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

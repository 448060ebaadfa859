"""A small thread-safe LRU cache for finished answers (one per worker process)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class AnswerCache:
    """Least-recently-used map of finished response bodies; size 0 disables it."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[Hashable, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> dict | None:
        """The body stored under `key`, marked as just used, or None."""
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: Hashable, body: dict) -> dict:
        """Store `body` under `key` (dropping the least recently used) and return it."""
        if self.size:
            with self._lock:
                self._entries[key] = body
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return body

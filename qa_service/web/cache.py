"""A small thread-safe LRU cache for finished answers (one per worker process)."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Hashable


class AnswerCache:
    """Least-recently-used map of finished response bodies, bounded in entries and in bytes.

    A body's bytes are those of its JSON; a size or byte budget of 0 disables the cache.
    """

    def __init__(self, size: int, max_bytes: int):
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, tuple[dict, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> dict | None:
        """The body stored under `key`, marked as just used, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, body: dict) -> dict:
        """Store `body` under `key` (dropping the least recently used) and return it.

        A body larger than the whole byte budget is not kept.
        """
        if not self.size:
            return body
        # Keys count too: the question is part of the key and may be long.
        cost = len(json.dumps(body, ensure_ascii=False).encode()) + len(repr(key).encode())
        if cost > self.max_bytes:
            return body
        with self._lock:
            if key in self._entries:
                self.bytes -= self._entries.pop(key)[1]
            self._entries[key] = (body, cost)
            self.bytes += cost
            while len(self._entries) > self.size or self.bytes > self.max_bytes:
                self.bytes -= self._entries.popitem(last=False)[1][1]
        return body

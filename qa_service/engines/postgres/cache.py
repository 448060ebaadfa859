"""The PostgreSQL engine's caches: what a worker keeps between questions, bounded in bytes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any


class BoundedCache(OrderedDict):
    """A least-recently-used mapping holding at most `budget` bytes, as `weigh` counts them."""

    def __init__(self, budget: int, weigh: Callable[[Any], int]):
        super().__init__()
        self.budget, self.weigh, self.held = budget, weigh, 0
        self._sizes: dict[Any, int] = {}  # each value weighed once, when it is kept

    def remember(self, key, value):
        """Keep `value` (unless it alone is over the budget), dropping the oldest; return it."""
        size = self.weigh(value)
        if key in self:
            del self[key]
            self.held -= self._sizes.pop(key)
        if size <= self.budget:
            self[key] = value
            self._sizes[key] = size
            self.held += size
            while self.held > self.budget:
                self.held -= self._sizes.pop(self.popitem(last=False)[0])
        return value

    def recall_many(self, keys: Iterable) -> dict:
        """The values kept for those of `keys` that are kept (now the most recent)."""
        found = {key: self[key] for key in keys if key in self}
        for key in found:
            self.move_to_end(key)
        return found

    def recall(self, key):
        """The value kept for `key` (now the most recent), or None."""
        if key not in self:
            return None
        self.move_to_end(key)
        return self[key]

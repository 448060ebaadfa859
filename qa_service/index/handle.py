"""Opening an index's current generation, and following it in a worker."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

from qa_service.engines import engine_for
from qa_service.retrieval.store import Engine, IndexUnavailable, PassageStore

from .build import LAYER_SHARE, BuildReport, update_index

# How often a worker checks that the files of the generation it serves are unchanged.
FILE_CHECK_SECONDS = 1.0


def open_generation(index: Engine | Path | str) -> PassageStore:
    """Open the current generation of an index, or raise IndexUnavailable."""
    return engine_for(index).open()


def check_index(index: Engine | Path | str) -> str:
    """The current generation's name if it can be served, else raise IndexUnavailable (cheap)."""
    return engine_for(index).check()


class IndexHandle:
    """A per-process view of an index folder that follows the `current` generation.

    Open it after gunicorn forks: Whoosh file handles must not be shared
    between processes. Each request takes the generation once from `generation()`.
    """

    def __init__(self, index: Engine | Path | str, *, layer_share: float = LAYER_SHARE):
        self.engine = engine_for(index)
        self.layer_share = layer_share
        self._lock = threading.Lock()
        self._generation: PassageStore | None = None
        self._checked_at = 0.0
        self._damage: str | None = None

    @property
    def loaded(self) -> PassageStore | None:
        """The generation this process has open, without opening or checking anything."""
        return self._generation

    def update(self, seeds_dir: Path | str) -> BuildReport:
        """Index the articles after a write (`update_index`), over what this process has open."""
        return update_index(seeds_dir, self.engine, self._generation, layer_share=self.layer_share)

    def generation(self) -> PassageStore:
        """The current generation, reopened when a build has swapped in a new one.

        Raises IndexUnavailable when there is none, or when the files of the one
        this process serves have changed since it opened them (checked at most
        every FILE_CHECK_SECONDS). A worker could go on answering from what it
        read into memory, but it refuses instead: workers that opened the
        generation before the damage and after it must agree on readiness, and
        the operator must see the fault (503 and one log line) and rebuild.
        """
        current = self.engine.current_name()
        loaded = self._generation
        if loaded is not None and loaded.info.name == current:
            now = time.monotonic()
            if now - self._checked_at >= FILE_CHECK_SECONDS:
                self._damage, self._checked_at = loaded.damage(), now
            if self._damage:
                raise _damaged(self._damage)
            return loaded
        del loaded  # nothing here may keep the generation being replaced alive
        with self._lock:
            if self._generation is None or self._generation.info.name != current:
                self._generation = self.engine.open(reuse=self._generation)
                self._damage, self._checked_at = None, time.monotonic()
                _out_of_the_collector_s_sight()
            return self._generation

    def verify(self, generation: PassageStore) -> None:
        """Raise IndexUnavailable if `generation` is damaged, looked at now: a request that
        failed on it asks. Damage to the one this process serves then counts at once for
        every request after, not from the next file check on."""
        damage = generation.damage()
        if not damage:
            return
        if generation is self._generation:
            self._damage, self._checked_at = damage, time.monotonic()
        raise _damaged(damage)


def _damaged(damage: str) -> IndexUnavailable:
    return IndexUnavailable(f"{damage}: run `qa-service index --force`")


def _out_of_the_collector_s_sight() -> None:
    """Let the cyclic garbage collector skip what a worker holds for as long as it serves.

    A generation is about ten objects per passage (half a million for the
    Python documentation), and a full collection walks every one: a 0.1 s
    pause in whichever request sets it off. They are moved to the permanent
    generation (gc.freeze) once opened; the generation they replace (and any
    garbage among them) is collected once here, on a swap, instead.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()

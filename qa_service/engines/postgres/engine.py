"""The PostgreSQL engine: generations as schemas of one database, optionally sharded.

A build writes the prepared index into a new schema (`gen_…`, schema.py,
write.py), then makes it current in one transaction (the `qa_current` row) and
drops all but the newest GENERATIONS_KEPT. Workers keep nothing of the corpus:
generation.py reads what a question needs through bounded caches.

The same analysis, postings and vectors as the Whoosh engine are stored
(terms as the service's own analysed term ids, not PostgreSQL's text search
configuration), so both engines score passages alike.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

from qa_service.core.results import SourceDocument
from qa_service.engines.generations import GENERATIONS_KEPT, generation_name
from qa_service.engines.layered import LayeredStore, full_build_of, served_passages
from qa_service.retrieval.store import (
    SHA256,
    VERSIONS_DAYS,
    IndexUnavailable,
    Layer,
    PassageStore,
    PreparedIndex,
)

from .generation import PostgresGeneration
from .schema import (
    OLD_GENERATIONS,
    PUBLIC_SCHEMA,
    connect,
    create_tables,
    current,
    drop,
    index_tables,
    schema_of,
    shard_url,
)
from .write import write

_LOCK_KEY = 0x51415F42  # pg_advisory_lock key of builds ("QA_B")
# How often a worker asks the database which generation is current, and that every
# shard still answers: not once per request.
CHECK_SECONDS = 1.0
# So a generation replaced since a worker last asked is still there for its requests
# (writes come faster than CHECK_SECONDS), the newest GENERATIONS_KEPT are kept and any
# replaced in the last REPLACED_KEPT_SECONDS, with the full builds they are layered over.
REPLACED_KEPT_SECONDS = 60


class PostgresEngine:
    """Generations as schemas of one database (an `store.Engine`).

    With `shards` (names of postgres_fdw foreign servers defined on the
    database at `url`, the coordinator), a build hash-partitions the passages
    and champion lists by position over them; questions read those from the
    shards themselves (through the coordinator's foreign servers' addresses) and
    everything else from the coordinator.
    """

    seen_within = CHECK_SECONDS

    def __init__(
        self,
        url: str,
        shards: Sequence[str] = (),
        versions_days: float = VERSIONS_DAYS,
        kept_dir: Path | None = None,
    ):
        self.url = url
        self.versions_days = versions_days
        self.shards = list(shards)
        self.kept_dir = kept_dir
        self._lock = threading.Lock()
        self._connection = None
        self._name: str | None = None
        self._checked_at = -math.inf

    def current_name(self) -> str | None:
        """The current generation's name (asked at most every CHECK_SECONDS), or None
        while the database cannot be reached."""
        now = time.monotonic()
        if now - self._checked_at < CHECK_SECONDS:
            return self._name
        try:
            self._name = self._on_session(current)
        except Exception:  # an unreachable database serves nothing: opening will say why
            self._name = None
        self._checked_at = now
        return self._name

    def _on_session(self, work):
        """`work(connection)` on this process's own connection, opened again when lost."""
        with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = connect(self.url)
                weakref.finalize(self, self._connection.close)
            return work(self._connection)

    def unchanged(self, corpus_hash: str) -> tuple[str, int] | None:
        """The current generation's name and passages if built from `corpus_hash`."""
        with connect(self.url) as connection:
            connection.execute(PUBLIC_SCHEMA)
            row = connection.execute(
                "SELECT g.name, g.passages FROM qa_current c JOIN qa_generations g USING (name)"
                " WHERE g.corpus_hash = %s",
                (corpus_hash,),
            ).fetchone()
        return (row[0], row[1]) if row else None

    @contextlib.contextmanager
    def build_lock(self) -> Iterator[None]:
        """One build at a time per database (a session advisory lock)."""
        with connect(self.url) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))

    def publish(self, prepared: PreparedIndex, corpus_hash: str, layer: Layer | None = None) -> str:
        """Write a new schema, then make it current and drop old ones (but the bases of
        those kept) in one transaction; a layer's schema holds the layer alone."""
        name = generation_name(corpus_hash)
        schema = schema_of(name)
        stored_layer = None
        if layer is not None:
            stored_layer = json.dumps({"base": layer.base, "hidden": dict(layer.hidden)})
        with connect(self.url) as connection:
            connection.execute(PUBLIC_SCHEMA)
            passages = len(prepared.passages)  # what it serves: with a layer, the base's too
            if layer is not None:
                base = connection.execute(
                    "SELECT passages FROM qa_generations WHERE name = %s AND layer IS NULL",
                    (layer.base,),
                ).fetchone()
                if base is None:
                    raise ValueError(f"no full build {layer.base} to lay a layer over")
                passages = served_passages(base[0], layer.hidden, passages)
            shards = [shard_url(connection, server) for server in self.shards]
            try:
                create_tables(connection, schema, self.shards, shards)
                with connection.transaction():
                    write(connection, schema, prepared)
                index_tables(connection, schema, shards)
            except BaseException:
                drop(connection, schema, shards)
                raise
            with connection.transaction():
                connection.execute(
                    "INSERT INTO qa_generations (name, corpus_hash, passages, layer)"
                    " VALUES (%s, %s, %s, %s::jsonb)",
                    (name, corpus_hash, passages, stored_layer),
                )
                connection.execute(
                    "INSERT INTO qa_current (name) VALUES (%s)"
                    " ON CONFLICT (only_row) DO UPDATE SET name = excluded.name",
                    (name,),
                )
                for source in prepared.sources:
                    connection.execute(
                        "INSERT INTO qa_versions (sha256, document, last_seen)"
                        " VALUES (%s, %s::jsonb, now())"
                        " ON CONFLICT (sha256) DO UPDATE SET last_seen = now()",
                        (source["sha256"], json.dumps(source)),
                    )
                connection.execute(
                    "DELETE FROM qa_versions WHERE last_seen < now() - make_interval(secs => %s)",
                    (self.versions_days * 86400,),
                )
                if layer is not None:  # the base's versions are still cited
                    connection.execute(
                        "UPDATE qa_versions SET last_seen = now() WHERE sha256 IN"
                        f" (SELECT sha256 FROM {schema_of(layer.base)}.sources"
                        " WHERE NOT name = ANY(%s))",
                        (list(layer.hidden),),
                    )
                old = connection.execute(OLD_GENERATIONS, (GENERATIONS_KEPT, REPLACED_KEPT_SECONDS))
                old = old.fetchall()
                for (old_name,) in old:
                    connection.execute("DELETE FROM qa_generations WHERE name = %s", (old_name,))
            for (old_name,) in old:
                drop(connection, schema_of(old_name), shards)
        self._checked_at = -math.inf
        return name

    def version(self, sha256: str) -> SourceDocument | None:
        """An article's text as some build indexed it, by the text's SHA-256, or None."""
        if not SHA256.fullmatch(sha256):
            return None
        query = "SELECT document FROM qa_versions WHERE sha256 = %s"
        try:
            row = self._on_session(
                lambda connection: connection.execute(query, (sha256,)).fetchone()
            )
        except Exception as exc:
            raise IndexUnavailable(f"database unreachable ({exc})") from exc
        return SourceDocument(**row[0]) if row else None

    def open(self, reuse: PassageStore | None = None, *, whole: bool = True) -> PassageStore:
        """Open the current generation, or raise IndexUnavailable; a layer's base is taken
        from `reuse` when it lies over the same. (A generation here is read as it is
        asked, `whole` or not.)"""
        try:
            with connect(self.url) as connection:
                name = current(connection)
                row = connection.execute(
                    "SELECT layer FROM qa_generations WHERE name = %s", (name,)
                ).fetchone()
        except Exception as exc:
            raise IndexUnavailable(f"database unreachable ({exc})") from exc
        if name is None:
            raise IndexUnavailable("no index in the database: run `qa-service index`")
        if not (layer := row and row[0]):
            return PostgresGeneration(name, self.url)
        base = full_build_of(reuse)
        if base is None or base.info.name != layer["base"]:
            base = PostgresGeneration(layer["base"], self.url)
        hidden = {source: tuple(span) for source, span in layer["hidden"].items()}
        top = PostgresGeneration(name, self.url, base.info.encoder)
        return LayeredStore(name, base, top, Layer(layer["base"], hidden))

    def check(self) -> str:
        """The current generation's name if the database serves it, else raise (cheap: no
        generation is opened, no model loaded)."""
        try:
            with connect(self.url) as connection:
                name = current(connection)
                if name is not None:
                    connection.execute(f"SELECT 1 FROM {schema_of(name)}.facts LIMIT 1")
        except Exception as exc:
            raise IndexUnavailable(f"database unreachable ({exc})") from exc
        if name is None:
            raise IndexUnavailable("no index in the database: run `qa-service index`")
        return name

"""The PostgreSQL engine: a generation as tables in a schema of its own, read per question.

A build writes the prepared index into a new schema (`gen_…`), then makes it
current in one transaction (the `qa_current` row) and drops all but the
newest GENERATIONS_KEPT. Workers keep nothing of the corpus: a question reads
its terms' champion lists, its candidates' rows and the vectors of the
clusters it probes, through bounded caches.

The same analysis, postings and vectors as the Whoosh engine are stored
(terms as the service's own analysed term ids, not PostgreSQL's text search
configuration), so both engines score passages alike.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.conninfo import make_conninfo

from qa_service.core.corroboration import links_as_rows, links_from_rows
from qa_service.core.passages import Passage, Token
from qa_service.core.results import SourceDocument
from qa_service.engines.generations import GENERATIONS_KEPT, generation_name
from qa_service.engines.layered import LayeredStore, full_build_of
from qa_service.retrieval.analysis import WORD
from qa_service.retrieval.nearest import best, probe
from qa_service.retrieval.postings import bm25, stored_length
from qa_service.retrieval.semantic import DIMENSIONS, MODEL_DIR, SentenceEncoder
from qa_service.retrieval.spelling import closest_word
from qa_service.retrieval.store import (
    SHA256,
    VERSIONS_DAYS,
    IndexUnavailable,
    Layer,
    PassageStore,
    PreparedIndex,
)

# Bytes kept per worker between questions, least recently used first out: passage
# rows, the vectors of probed clusters, and article texts.
CACHED_PASSAGE_BYTES = 32 << 20
CACHED_VECTOR_BYTES = 64 << 20
CACHED_SOURCE_BYTES = 32 << 20
CACHED_TERM_BYTES = 8 << 20
_LOCK_KEY = 0x51415F42  # pg_advisory_lock key of builds ("QA_B")

_PUBLIC_SCHEMA = """
CREATE TABLE IF NOT EXISTS qa_generations (
    name text PRIMARY KEY, corpus_hash text NOT NULL, passages integer NOT NULL,
    built_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS qa_versions (
    sha256 text PRIMARY KEY, document jsonb NOT NULL, last_seen timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS qa_current (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    name text NOT NULL REFERENCES qa_generations (name));
ALTER TABLE qa_generations ADD COLUMN IF NOT EXISTS layer jsonb;
"""
# The big tables: on the coordinator alone, or hash-partitioned over the shards (by the
# key named with each). A cluster's vectors are one row: a question reads whole clusters.
_PASSAGES = """(
    position integer NOT NULL, id text NOT NULL, source text NOT NULL,
    start integer NOT NULL, "end" integer NOT NULL, text text NOT NULL,
    byte_start integer NOT NULL, byte_end integer NOT NULL,
    line_start integer NOT NULL, line_end integer NOT NULL,
    sentences integer[] NOT NULL, heading boolean NOT NULL,
    terms integer[] NOT NULL, starts integer[] NOT NULL, ends integer[] NOT NULL,
    vector bytea NOT NULL, sentence_vectors bytea NOT NULL, links text NOT NULL)"""
_BIG_TABLES = {
    "passages": (_PASSAGES, "position"),
    "champions": (
        "(term integer NOT NULL, position integer NOT NULL, score double precision NOT NULL)",
        "position",
    ),
    "clusters": ("(cluster integer NOT NULL, positions bytea NOT NULL, vectors bytea NOT NULL)",
                 "cluster"),
}  # fmt: skip
_PASSAGE_INDEXES = """
CREATE UNIQUE INDEX ON {passages} (position);
CREATE UNIQUE INDEX ON {passages} (id);
CREATE INDEX ON {passages} (source);
CREATE INDEX ON {passages} USING gin (terms);
CREATE INDEX ON {champions} (term);
CREATE UNIQUE INDEX ON {clusters} (cluster);
ANALYZE {passages};
ANALYZE {champions};
ANALYZE {clusters};
"""
# The small tables, on the coordinator.
_GENERATION_SCHEMA = """
CREATE TABLE {s}.terms (term text PRIMARY KEY, id integer NOT NULL,
    idf double precision NOT NULL);
CREATE TABLE {s}.words (word text PRIMARY KEY, frequency double precision NOT NULL);
CREATE TABLE {s}.sources (name text PRIMARY KEY, title text, publisher text, date text,
    url text, passages integer NOT NULL, text text NOT NULL, ordinal integer NOT NULL,
    sha256 text NOT NULL);
CREATE TABLE {s}.facts (key text PRIMARY KEY, value jsonb NOT NULL);
CREATE TABLE {s}.centres (cluster integer PRIMARY KEY, vector bytea NOT NULL);
"""
_GENERATION_INDEXES = "CREATE INDEX ON {s}.words (word text_pattern_ops);"
# How often a worker asks the database which generation is current, and that every
# shard still answers: not once per request.
CHECK_SECONDS = 1.0
# So a generation replaced since a worker last asked is still there for its requests
# (writes come faster than CHECK_SECONDS), the newest GENERATIONS_KEPT are kept and any
# replaced in the last REPLACED_KEPT_SECONDS, with the full builds they are layered over.
REPLACED_KEPT_SECONDS = 60
_OLD_GENERATIONS = """
WITH ordered AS (
    SELECT name, layer, lead(built_at) OVER (ORDER BY name) AS replaced_at,
           row_number() OVER (ORDER BY name DESC) AS newness
    FROM qa_generations),
kept AS (
    SELECT name, layer FROM ordered
    WHERE newness <= %s OR replaced_at > now() - make_interval(secs => %s))
SELECT name FROM qa_generations
EXCEPT SELECT name FROM kept
EXCEPT SELECT layer->>'base' FROM kept WHERE layer IS NOT NULL
"""


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _schema(name: str) -> str:
    # Generation names are made by generations.new_generation's pattern: safe as identifiers.
    return name.lower().replace("-", "_")


class PostgresEngine:
    """Generations as schemas of one database (an `store.Engine`).

    With `shards` (names of postgres_fdw foreign servers defined on the
    database at `url`, the coordinator), a build hash-partitions the passages
    and champion lists by position over them; questions still go to the
    coordinator, which sends each shard its part (in parallel with the
    servers' `async_capable` option).
    """

    def __init__(self, url: str, shards: Sequence[str] = (), versions_days: float = VERSIONS_DAYS):
        self.url = url
        self.versions_days = versions_days
        self.shards = list(shards)
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
            self._name = self._on_session(_current)
        except Exception:  # an unreachable database serves nothing: opening will say why
            self._name = None
        self._checked_at = now
        return self._name

    def _on_session(self, work):
        """`work(connection)` on this process's own connection, opened again when lost."""
        with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = _connect(self.url)
                weakref.finalize(self, self._connection.close)
            return work(self._connection)

    def unchanged(self, corpus_hash: str) -> tuple[str, int] | None:
        """The current generation's name and passages if built from `corpus_hash`."""
        with _connect(self.url) as connection:
            connection.execute(_PUBLIC_SCHEMA)
            row = connection.execute(
                "SELECT g.name, g.passages FROM qa_current c JOIN qa_generations g USING (name)"
                " WHERE g.corpus_hash = %s",
                (corpus_hash,),
            ).fetchone()
        return (row[0], row[1]) if row else None

    @contextlib.contextmanager
    def build_lock(self) -> Iterator[None]:
        """One build at a time per database (a session advisory lock)."""
        with _connect(self.url) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))

    def publish(self, prepared: PreparedIndex, corpus_hash: str, layer: Layer | None = None) -> str:
        """Write a new schema, then make it current and drop old ones (but the bases of
        those kept) in one transaction; a layer's schema holds the layer alone."""
        name = generation_name(corpus_hash)
        schema = _schema(name)
        stored_layer = None
        if layer is not None:
            stored_layer = json.dumps({"base": layer.base, "hidden": dict(layer.hidden)})
        with _connect(self.url) as connection:
            connection.execute(_PUBLIC_SCHEMA)
            if (
                layer is not None
                and not connection.execute(
                    "SELECT 1 FROM qa_generations WHERE name = %s AND layer IS NULL", (layer.base,)
                ).fetchone()
            ):
                raise ValueError(f"no full build {layer.base} to lay a layer over")
            shards = [_shard_url(connection, server) for server in self.shards]
            try:
                _create_tables(connection, schema, self.shards, shards)
                with connection.transaction():
                    _write(connection, schema, prepared)
                _index_tables(connection, schema, shards)
            except BaseException:
                _drop(connection, schema, shards)
                raise
            with connection.transaction():
                connection.execute(
                    "INSERT INTO qa_generations (name, corpus_hash, passages, layer)"
                    " VALUES (%s, %s, %s, %s::jsonb)",
                    (name, corpus_hash, len(prepared.passages), stored_layer),
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
                        f" (SELECT sha256 FROM {_schema(layer.base)}.sources"
                        " WHERE NOT name = ANY(%s))",
                        (list(layer.hidden),),
                    )
                old = connection.execute(
                    _OLD_GENERATIONS, (GENERATIONS_KEPT, REPLACED_KEPT_SECONDS)
                )
                old = old.fetchall()
                for (old_name,) in old:
                    connection.execute("DELETE FROM qa_generations WHERE name = %s", (old_name,))
            for (old_name,) in old:
                _drop(connection, _schema(old_name), shards)
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

    def open(self, reuse: PassageStore | None = None) -> PassageStore:
        """Open the current generation, or raise IndexUnavailable; a layer's base is taken
        from `reuse` when it lies over the same."""
        try:
            connection = _connect(self.url)
            name = _current(connection)
            row = connection.execute(
                "SELECT layer FROM qa_generations WHERE name = %s", (name,)
            ).fetchone()
        except Exception as exc:
            raise IndexUnavailable(f"database unreachable ({exc})") from exc
        if name is None:
            raise IndexUnavailable("no index in the database: run `qa-service index`")
        if not (layer := row and row[0]):
            return PostgresGeneration(name, connection)
        base = full_build_of(reuse)
        if base is None or base.name != layer["base"]:
            try:
                base = PostgresGeneration(layer["base"], _connect(self.url))
            except Exception as exc:
                raise IndexUnavailable(f"database unreachable ({exc})") from exc
        hidden = {source: tuple(span) for source, span in layer["hidden"].items()}
        return LayeredStore(
            name, base, PostgresGeneration(name, connection), Layer(layer["base"], hidden)
        )

    def check(self) -> str:
        """The current generation's name if the database serves it, else raise (cheap: no
        generation is opened, no model loaded)."""
        try:
            with _connect(self.url) as connection:
                name = _current(connection)
                if name is not None:
                    connection.execute(f"SELECT 1 FROM {_schema(name)}.facts LIMIT 1")
        except Exception as exc:
            raise IndexUnavailable(f"database unreachable ({exc})") from exc
        if name is None:
            raise IndexUnavailable("no index in the database: run `qa-service index`")
        return name


def _shard_url(connection, server: str) -> str:
    """A libpq URL of a shard, from its foreign server's options and our user mapping."""
    row = connection.execute(
        "SELECT s.srvoptions, m.umoptions FROM pg_foreign_server s"
        " LEFT JOIN pg_user_mappings m ON m.srvid = s.oid AND m.usename = current_user"
        " WHERE s.srvname = %s",
        (server,),
    ).fetchone()
    if row is None:
        raise ValueError(f"no foreign server {server!r} on the coordinator")
    options = dict(option.split("=", 1) for option in [*(row[0] or []), *(row[1] or [])])
    wanted = {key: options[key] for key in ("host", "port", "dbname", "user") if key in options}
    return make_conninfo(**wanted)


def _create_tables(connection, schema: str, servers: list[str], shards: list[str]) -> None:
    """The generation's schema and tables: the big ones on the shards when there are any."""
    connection.execute(f"CREATE SCHEMA {schema}")
    connection.execute(_GENERATION_SCHEMA.format(s=schema))
    if not shards:
        for table, (columns, _) in _BIG_TABLES.items():
            connection.execute(f"CREATE TABLE {schema}.{table} {columns}")
        return
    for url in shards:
        with _connect(url) as shard:
            shard.execute(f"CREATE SCHEMA {schema}")
            for table, (columns, _) in _BIG_TABLES.items():
                shard.execute(f"CREATE TABLE {schema}.{schema}_{table} {columns}")
    for table, (columns, key) in _BIG_TABLES.items():
        connection.execute(f"CREATE TABLE {schema}.{table} {columns} PARTITION BY HASH ({key})")
        for number, server in enumerate(servers):
            connection.execute(
                f"CREATE FOREIGN TABLE {schema}.{table}_{number} PARTITION OF {schema}.{table}"
                f" FOR VALUES WITH (MODULUS {len(servers)}, REMAINDER {number})"
                f" SERVER {server} OPTIONS (schema_name '{schema}', table_name '{schema}_{table}')"
            )


def _index_tables(connection, schema: str, shards: list[str]) -> None:
    """Index the tables once filled (faster than filling indexed ones), where their rows are."""
    connection.execute(_GENERATION_INDEXES.format(s=schema))
    if not shards:
        tables = {table: f"{schema}.{table}" for table in _BIG_TABLES}
        connection.execute(_PASSAGE_INDEXES.format(**tables))
        return
    tables = {table: f"{schema}.{schema}_{table}" for table in _BIG_TABLES}
    for url in shards:
        with _connect(url) as shard:
            shard.execute(_PASSAGE_INDEXES.format(**tables))


def _drop(connection, schema: str, shards: list[str]) -> None:
    """Remove a generation's schema from the coordinator and every shard."""
    connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    for url in shards:
        with contextlib.suppress(Exception), _connect(url) as shard:
            shard.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _current(connection) -> str | None:
    exists = connection.execute("SELECT to_regclass('qa_current')").fetchone()[0]
    if exists is None:
        return None
    row = connection.execute("SELECT name FROM qa_current").fetchone()
    return row[0] if row else None


def _write(connection, schema: str, prepared: PreparedIndex) -> None:
    """Copy every table of a prepared index into `schema`."""
    postings, vectors = prepared.postings, prepared.vectors
    sentence_rows = np.cumsum([0] + [len(p.sentences) for p in prepared.passages])
    with connection.cursor() as cursor:
        with cursor.copy(
            f'COPY {schema}.passages (position, id, source, start, "end", text, byte_start,'
            " byte_end, line_start, line_end, sentences, heading, terms, starts, ends, vector,"
            " sentence_vectors, links) FROM STDIN"
        ) as copy:
            for position, passage in enumerate(prepared.passages):
                terms, starts, ends = postings.token_columns(position)
                copy.write_row((
                    position, passage.id, passage.source, passage.start, passage.end,
                    passage.text, passage.byte_start, passage.byte_end, passage.line_start,
                    passage.line_end, [edge for span in passage.sentences for edge in span],
                    passage.heading,
                    terms, starts, ends,
                    vectors.vectors[vectors.position[position]].astype(np.float32).tobytes(),
                    prepared.sentence_vectors[
                        sentence_rows[position] : sentence_rows[position + 1]
                    ].astype(np.float32).tobytes(),
                    json.dumps(links_as_rows(prepared.links[position])),
                ))  # fmt: skip
        with cursor.copy(f"COPY {schema}.champions (term, position, score) FROM STDIN") as copy:
            for term in range(len(postings.vocabulary)):
                first, last = postings.champion_rows[term], postings.champion_rows[term + 1]
                for position, score in zip(
                    postings.champion_passages[first:last].tolist(),
                    postings.champion_scores[first:last].tolist(),
                    strict=True,
                ):
                    copy.write_row((term, position, score))
        with cursor.copy(f"COPY {schema}.terms (term, id, idf) FROM STDIN") as copy:
            for term_id, term in enumerate(postings.vocabulary):
                copy.write_row((term, term_id, float(postings.idf[term_id])))
        with cursor.copy(f"COPY {schema}.words (word, frequency) FROM STDIN") as copy:
            for word, frequency in _word_frequencies(prepared.passages).items():
                copy.write_row((word, frequency))
        with cursor.copy(
            f"COPY {schema}.sources (name, title, publisher, date, url, passages, text, ordinal,"
            " sha256) FROM STDIN"
        ) as copy:
            for ordinal, source in enumerate(prepared.sources):
                copy.write_row((
                    source["name"], source["title"], source["publisher"], source["date"],
                    source["url"], source["passages"], source["text"], ordinal, source["sha256"],
                ))  # fmt: skip
        clusters = f"COPY {schema}.clusters (cluster, positions, vectors) FROM STDIN"
        with cursor.copy(clusters) as copy:
            for cluster in range(len(vectors.cluster_rows) - 1):
                first, last = vectors.cluster_rows[cluster], vectors.cluster_rows[cluster + 1]
                copy.write_row((
                    cluster,
                    vectors.order[first:last].astype(np.int32).tobytes(),
                    vectors.vectors[first:last].astype(np.float32).tobytes(),
                ))  # fmt: skip
        with cursor.copy(f"COPY {schema}.centres (cluster, vector) FROM STDIN") as copy:
            for cluster, centre in enumerate(vectors.centres):
                copy.write_row((cluster, centre.astype(np.float32).tobytes()))
        facts = {
            "passages": len(prepared.passages),
            "cluster_sizes": np.diff(vectors.cluster_rows).tolist(),
            "mean_length": float(postings.mean_length),
            "boilerplate": sorted(prepared.boilerplate),
        }
        for key, value in facts.items():
            cursor.execute(
                f"INSERT INTO {schema}.facts (key, value) VALUES (%s, %s)", (key, json.dumps(value))
            )


def _row_bytes(row: dict) -> int:
    """About what a cached passage row holds, in bytes."""
    terms = len(row["columns"][0])
    return (
        sys.getsizeof(row["passage"].text) + row["vector"].nbytes + row["sentences"].nbytes
        + 3 * 36 * terms + sys.getsizeof(row["links"])
    )  # fmt: skip


def _storable(text: str) -> bool:
    """Whether PostgreSQL can hold the text (no NUL, no lone surrogate): what it cannot
    hold it does not hold, so a lookup of it finds nothing rather than failing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _word_frequencies(passages: Sequence[Passage]) -> dict[str, float]:
    """Every word as written (lower-cased), with how often the passages use it."""
    counts: dict[str, float] = {}
    for passage in passages:
        for word in WORD.findall(passage.text.lower()):
            counts[word] = counts.get(word, 0.0) + 1.0
    return counts


class _Bounded(OrderedDict):
    """A least-recently-used mapping holding at most `budget` bytes, as `weigh` counts them."""

    def __init__(self, budget: int, weigh: Callable[[Any], int]):
        super().__init__()
        self.budget, self.weigh, self.held = budget, weigh, 0

    def remember(self, key, value):
        """Keep `value` (unless it alone is over the budget), dropping the oldest; return it."""
        size = self.weigh(value)
        if key in self:
            self.held -= self.weigh(self.pop(key))
        if size <= self.budget:
            self[key] = value
            self.held += size
            while self.held > self.budget:
                self.held -= self.weigh(self.popitem(last=False)[1])
        return value

    def recall(self, key):
        """The value kept for `key` (now the most recent), or None."""
        if key not in self:
            return None
        self.move_to_end(key)
        return self[key]


class PostgresGeneration:
    """One generation in the database (a `store.PassageStore`); rows are read when asked for."""

    def __init__(self, name: str, connection):
        self.name = name
        self._connection = connection
        # Closed when the generation is let go (requests may still hold it after a swap).
        weakref.finalize(self, connection.close)
        self._schema = _schema(name)
        # One connection per worker: psycopg connections are not for two queries at once.
        self._lock = threading.Lock()
        # Shards answer GROUP BY position (the partition key) each for their own rows.
        connection.execute("SET enable_partitionwise_aggregate = on")
        facts = dict(self._query(f"SELECT key, value FROM {self._schema}.facts"))
        self._count = int(facts["passages"])
        self.mean_length = float(facts["mean_length"])
        self.boilerplate = frozenset(facts["boilerplate"])
        centres = self._query(f"SELECT vector FROM {self._schema}.centres ORDER BY cluster")
        self._centres = np.array(
            [np.frombuffer(row[0], dtype=np.float32) for row in centres], dtype=np.float32
        ).reshape(len(centres), DIMENSIONS)
        self._cluster_sizes = np.array(facts["cluster_sizes"], dtype=np.int64)
        # The shards' parts of the passages (none on a single server): each must answer.
        self._parts = [
            row[0]
            for row in self._query(
                "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
                (f"{self._schema}.passages",),
            )
        ]
        self._rows = _Bounded(CACHED_PASSAGE_BYTES, _row_bytes)
        self._cluster_vectors = _Bounded(
            CACHED_VECTOR_BYTES, lambda pair: pair[0].nbytes + pair[1].nbytes
        )
        self.passages = _Rows(self, "passage")
        self.links = _Rows(self, "links", lambda text: links_from_rows(json.loads(text)))
        self.sources = _Sources(self)
        self.encoder = SentenceEncoder(MODEL_DIR)
        # Per instance, so a replaced generation takes its caches with it.
        self.correction = functools.lru_cache(maxsize=20_000)(self._correction)
        self._term = functools.lru_cache(maxsize=20_000)(self._read_term)
        self._term_cache = _Bounded(CACHED_TERM_BYTES, lambda entry: sys.getsizeof(entry[0]) + 64)

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._connection.execute(sql, parameters).fetchall()
        except Exception as exc:
            raise IndexUnavailable(f"database query failed ({exc})") from exc

    @property
    def passage_count(self) -> int:
        """How many passages the generation holds."""
        return self._count

    @property
    def max_idf(self) -> float:
        """The idf of a term no passage holds (Whoosh's formula with a frequency of 0)."""
        return math.log(self._count) + 1

    def _row(self, position: int) -> dict:
        if (row := self._rows.recall(position)) is not None:
            return row
        return self._rows_of([position])[position]

    def _rows_of(self, positions: Sequence[int]) -> dict[int, dict]:
        """The rows of these passages: cached, and the others read in one query."""
        found = {}
        for position in positions:
            if (row := self._rows.recall(position)) is not None:
                found[position] = row
        wanted = [p for p in dict.fromkeys(positions) if p not in found]
        if not wanted:
            return found
        rows = self._query(
            'SELECT position, id, source, start, "end", text, byte_start, byte_end, line_start,'
            " line_end, sentences, heading, terms, starts, ends, vector, sentence_vectors, links"
            f" FROM {self._schema}.passages WHERE position = ANY(%s)",
            (wanted,),
        )
        for row in rows:
            position, _, source, start, end, text, *located = row[:10]
            sentences, heading, terms, starts, ends, vector, sentence_vectors, links = row[10:]
            passage = Passage(
                source=source, start=start, end=end, text=text, byte_start=located[0],
                byte_end=located[1], line_start=located[2], line_end=located[3],
                sentences=tuple(zip(sentences[::2], sentences[1::2], strict=True)),
                heading=heading,
            )  # fmt: skip
            found[position] = self._rows.remember(
                position,
                {
                    "passage": passage,
                    "columns": (terms, starts, ends),
                    "vector": np.frombuffer(vector, dtype=np.float32),
                    "sentences": np.frombuffer(sentence_vectors, dtype=np.float32).reshape(
                        -1, DIMENSIONS
                    ),
                    # JSON, read when the passage is ranked (most candidates never are).
                    "links": links,
                },
            )
        missing = [p for p in wanted if p not in found]
        if missing:
            raise IndexError(f"no passage at positions {missing[:5]}")
        return found

    def passages_at(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions, read in one query."""
        return {position: row["passage"] for position, row in self._rows_of(positions).items()}

    def position_of(self, passage_id: str) -> int | None:
        """The position of the passage with this stable id, or None."""
        if not _storable(passage_id):
            return None
        rows = self._query(
            f"SELECT position FROM {self._schema}.passages WHERE id = %s", (passage_id,)
        )
        return rows[0][0] if rows else None

    def _read_term(self, term: str) -> tuple[int, float] | None:
        if not _storable(term):
            return None
        rows = self._query(f"SELECT id, idf FROM {self._schema}.terms WHERE term = %s", (term,))
        return (rows[0][0], rows[0][1]) if rows else None

    def term_idf(self, term: str) -> float:
        """The idf of an analysed term; a term the corpus lacks weighs most."""
        found = self._term(term)
        return found[1] if found else self.max_idf

    def term_ids(self, terms: Sequence[str]) -> dict[int, str]:
        """The ids of the terms the store holds."""
        return {found[0]: term for term in terms if (found := self._term(term))}

    def token_columns(self, position: int) -> tuple[list[int], list[int], list[int]]:
        """A passage's analysed terms as term ids, with their words' source offsets."""
        return self._row(position)["columns"]

    def _terms_by_id(self, term_ids: Sequence[int]) -> dict[int, tuple[str, float]]:
        """Term and idf of each id: cached (a bounded number), the others read in one query."""
        found = {}
        for term_id in term_ids:
            if (cached := self._term_cache.recall(term_id)) is not None:
                found[term_id] = cached
        missing = sorted(set(term_ids) - found.keys())
        if missing:
            rows = self._query(
                f"SELECT id, term, idf FROM {self._schema}.terms WHERE id = ANY(%s)", (missing,)
            )
            for term_id, term, idf in rows:
                found[term_id] = self._term_cache.remember(term_id, (term, idf))
        return found

    def token_idf(self, term_ids: Sequence[int]) -> list[float]:
        """The idf of each term id."""
        terms = self._terms_by_id(term_ids)
        return [terms[term_id][1] for term_id in term_ids]

    def tokens(self, position: int) -> tuple[Token, ...]:
        """A passage's analysed terms with the source offsets of their words."""
        terms, starts, ends = self.token_columns(position)
        names = self._terms_by_id(terms)
        return tuple(
            Token(names[term][0], start, end)
            for term, start, end in zip(terms, starts, ends, strict=True)
        )

    def best_passages(
        self, terms: Sequence[str], limit: int, sources: Sequence[str] | None = None
    ) -> dict[int, float]:
        """Up to `limit` passages by BM25 over `terms`; within `sources`, over every posting."""
        ids = {found[0]: found[1] for term in terms if (found := self._term(term))}
        if not ids:
            return {}
        if not sources:
            rows = self._query(
                f"SELECT position, sum(score) AS total FROM {self._schema}.champions"
                " WHERE term = ANY(%s) GROUP BY position ORDER BY total DESC, position LIMIT %s",
                (list(ids), limit),
            )
            return {position: total for position, total in rows}
        rows = self._query(
            f"SELECT position, terms FROM {self._schema}.passages"
            " WHERE source = ANY(%s) AND terms && %s::integer[]",
            (list(sources), list(ids)),
        )
        scores = {}
        for position, passage_terms in rows:
            length = stored_length(len(passage_terms)) / self.mean_length
            scores[position] = sum(
                bm25(idf, frequency, length)
                for term, idf in ids.items()
                if (frequency := passage_terms.count(term))
            )
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return dict(best)

    def encode_question(self, question: str) -> np.ndarray:
        """A question's unit-length embedding."""
        return self.encoder.encode([question])[0]

    def _vectors_of_clusters(self, clusters: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The positions and vectors of the passages of these clusters: cached, or read."""
        found = {}
        for cluster in clusters:
            if (cached := self._cluster_vectors.recall(cluster)) is not None:
                found[cluster] = cached
        missing = [cluster for cluster in clusters if cluster not in found]
        if missing:
            rows = self._query(
                f"SELECT cluster, positions, vectors FROM {self._schema}.clusters"
                " WHERE cluster = ANY(%s)",
                (missing,),
            )
            for cluster, positions, vectors in rows:
                found[cluster] = self._cluster_vectors.remember(
                    cluster,
                    (
                        np.frombuffer(positions, dtype=np.int32).astype(np.int64),
                        np.frombuffer(vectors, dtype=np.float32).reshape(-1, DIMENSIONS),
                    ),
                )
        parts = [found[cluster] for cluster in clusters]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def nearest(
        self, vector: np.ndarray, limit: int, sources: Sequence[str] | None = None
    ) -> list[int]:
        """The positions of up to `limit` passages nearest in meaning, best first."""
        clusters = probe(self._centres, self._cluster_sizes, vector) if len(self._centres) else [0]
        positions, vectors = self._vectors_of_clusters(clusters)
        if sources:
            allowed = {
                row[0]
                for row in self._query(
                    f"SELECT position FROM {self._schema}.passages WHERE source = ANY(%s)",
                    (list(sources),),
                )
            }
            keep = np.array([p in allowed for p in positions.tolist()], dtype=bool)
            positions, vectors = positions[keep], vectors[keep]
        return best(positions, vectors @ vector, limit)

    def similarity(self, positions: Sequence[int], vector: np.ndarray) -> np.ndarray:
        """The cosine of `vector` with each passage's embedding."""
        rows = self._rows_of(positions)
        return np.array([rows[p]["vector"] @ vector for p in positions], dtype=np.float32)

    def sentence_similarity(self, position: int, vector: np.ndarray) -> list[float]:
        """The cosine of `vector` with each of a passage's sentences, in order."""
        return (self._row(position)["sentences"] @ vector).tolist()

    def uses_word(self, word: str) -> bool:
        """Whether the articles use a lower-cased word as written."""
        if not _storable(word):
            return False
        return bool(self._query(f"SELECT 1 FROM {self._schema}.words WHERE word = %s", (word,)))

    def _correction(self, word: str) -> str | None:
        """The articles' closest word to one they lack (as WhooshGeneration's)."""
        if not _storable(word) or self.uses_word(word):
            return None
        rows = self._query(
            f"SELECT word, frequency FROM {self._schema}.words WHERE word LIKE %s"
            " AND length(word) BETWEEN %s AND %s",
            (word[0] + "%", len(word) - 2, len(word) + 2),
        )
        return closest_word(word, [row[0] for row in rows], [row[1] for row in rows])

    def damage(self) -> str | None:
        """Why the database (or one of its shards) cannot serve this generation, or None."""
        try:
            self._query("SELECT 1")
            for part in self._parts:
                self._query(f"SELECT 1 FROM {part} LIMIT 1")
        except IndexUnavailable as exc:
            return str(exc)
        return None


class _Rows(Sequence):
    """A field of every passage's row, by position, read when asked for."""

    def __init__(self, generation: PostgresGeneration, field: str, read=lambda value: value):
        self._generation, self._field, self._read = generation, field, read

    def __len__(self) -> int:
        return self._generation.passage_count

    def __getitem__(self, position):
        if not 0 <= position < len(self):
            raise IndexError(position)
        return self._read(self._generation._row(position)[self._field])


class _Sources(Mapping):
    """The articles by name, their texts read when asked for (a bounded cache)."""

    def __init__(self, generation: PostgresGeneration):
        self._generation = generation
        self._cache = _Bounded(CACHED_SOURCE_BYTES, lambda source: sys.getsizeof(source.text))

    def _names(self) -> list[str]:
        schema = self._generation._schema
        return [row[0] for row in self._generation._query(
            f"SELECT name FROM {schema}.sources ORDER BY ordinal"
        )]  # fmt: skip

    def __getitem__(self, name: str) -> SourceDocument:
        if (cached := self._cache.recall(name)) is not None:
            return cached
        if not _storable(name):
            raise KeyError(name)
        schema = self._generation._schema
        rows = self._generation._query(
            "SELECT name, title, publisher, date, url, passages, text, sha256"
            f" FROM {schema}.sources WHERE name = %s",
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

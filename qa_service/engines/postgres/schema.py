"""The PostgreSQL engine's tables: what a generation's schema holds, and where.

The big tables (passages, champion lists, clusters' vectors) are on the
coordinator alone, or hash-partitioned over postgres_fdw shards; the small
ones (terms, words, sources, facts, centres) stay on the coordinator.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

PUBLIC_SCHEMA = """
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
# A passage's whole vector stays in its row (PLAIN: never compressed or moved out to the
# TOAST table, as a row this long otherwise would): a question reads hundreds of vectors
# and nothing else of most of those rows, and a TOAST fetch each nearly doubled the time.
_STORAGE = {"passages": "ALTER TABLE {table} ALTER COLUMN vector SET STORAGE PLAIN"}
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
_GENERATION_INDEXES = """
CREATE INDEX ON {s}.words (word text_pattern_ops);
CREATE UNIQUE INDEX ON {s}.terms (id);
"""

OLD_GENERATIONS = """
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


APPLICATION_NAME = "qa-service"


def connect(url: str) -> psycopg.Connection:
    """A connection in autocommit mode (transactions are opened where they are meant),
    named in the servers' pg_stat_activity as the service's."""
    return psycopg.connect(url, autocommit=True, application_name=APPLICATION_NAME)


class Session:
    """A generation's one connection (psycopg connections are not for two queries at once),
    opened again when it was lost: a database restart must not end the generation."""

    def __init__(self, url: str):
        self._url = url
        self._connection: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def query(self, sql: str, parameters: Sequence[Any]) -> list[tuple]:
        """The rows of one statement (on a new connection if the last one was lost)."""
        with self._lock:
            if self._connection is None or self._connection.closed:
                self._connection = connect(self._url)
            # Binary results: a vector arrives as its bytes, not as hex text of twice the
            # size that the server encodes and we decode.
            return self._connection.execute(sql, parameters, binary=True).fetchall()

    def close(self) -> None:
        """Close the connection, if one is open."""
        if self._connection is not None:
            self._connection.close()


def integer_array(values: Iterable[int]) -> str:
    """These integers as one PostgreSQL array literal, for a `%s::integer[]` parameter
    (psycopg adapts a list element by element in Python: twice the time for the few
    hundred positions a question reads)."""
    return "{" + ",".join(map(str, values)) + "}"


def schema_of(name: str) -> str:
    """The schema a generation's tables are in."""
    # Generation names are made by generations.new_generation's pattern: safe as identifiers.
    return name.lower().replace("-", "_")


def shard_table(schema: str, table: str) -> str:
    """The name of one of a generation's big tables on a shard."""
    return f"{schema}.{schema}_{table}"


def shard_url(connection, server: str) -> str:
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


def create_tables(connection, schema: str, servers: list[str], shards: list[str]) -> None:
    """The generation's schema and tables: the big ones on the shards when there are any."""
    connection.execute(f"CREATE SCHEMA {schema}")
    connection.execute(_GENERATION_SCHEMA.format(s=schema))
    if not shards:
        for table, (columns, _) in _BIG_TABLES.items():
            _create_big_table(connection, table, f"{schema}.{table}", columns)
        return
    for url in shards:
        with connect(url) as shard:
            shard.execute(f"CREATE SCHEMA {schema}")
            for table, (columns, _) in _BIG_TABLES.items():
                _create_big_table(shard, table, shard_table(schema, table), columns)
    for table, (columns, key) in _BIG_TABLES.items():
        connection.execute(f"CREATE TABLE {schema}.{table} {columns} PARTITION BY HASH ({key})")
        for number, server in enumerate(servers):
            connection.execute(
                f"CREATE FOREIGN TABLE {schema}.{table}_{number} PARTITION OF {schema}.{table}"
                f" FOR VALUES WITH (MODULUS {len(servers)}, REMAINDER {number})"
                f" SERVER {server} OPTIONS (schema_name '{schema}', table_name '{schema}_{table}')"
            )


def _create_big_table(connection, table: str, name: str, columns: str) -> None:
    """One of the big tables, where its rows are, with its columns' storage."""
    connection.execute(f"CREATE TABLE {name} {columns}")
    if table in _STORAGE:
        connection.execute(_STORAGE[table].format(table=name))


def index_tables(connection, schema: str, shards: list[str]) -> None:
    """Index the tables once filled (faster than filling indexed ones), where their rows are."""
    connection.execute(_GENERATION_INDEXES.format(s=schema))
    if not shards:
        tables = {table: f"{schema}.{table}" for table in _BIG_TABLES}
        connection.execute(_PASSAGE_INDEXES.format(**tables))
        return
    tables = {table: shard_table(schema, table) for table in _BIG_TABLES}
    for url in shards:
        with connect(url) as shard:
            shard.execute(_PASSAGE_INDEXES.format(**tables))


def drop(connection, schema: str, shards: list[str]) -> None:
    """Remove a generation's schema from the coordinator and every shard."""
    connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    for url in shards:
        with contextlib.suppress(Exception), connect(url) as shard:
            shard.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def current(connection) -> str | None:
    """The current generation's name, or None."""
    exists = connection.execute("SELECT to_regclass('qa_current')").fetchone()[0]
    if exists is None:
        return None
    row = connection.execute("SELECT name FROM qa_current").fetchone()
    return row[0] if row else None


def storable(text: str) -> bool:
    """Whether PostgreSQL can hold the text (no NUL, no lone surrogate): what it cannot
    hold it does not hold, so a lookup of it finds nothing rather than failing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text

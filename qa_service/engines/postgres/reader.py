"""Where a PostgreSQL generation's rows are read: the coordinator, and each shard's own part.

The small tables (terms, words, sources, facts, centres) are asked of the
coordinator (the database at the service's URL). The big ones (passages,
champion lists, clusters' vectors) are asked of each shard itself, at the
address of the coordinator's foreign server for it: through the coordinator,
postgres_fdw carries every row to it as text and then on to us (vectors as
hex), which took twice as long as asking each shard in turn.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import psycopg

from qa_service.retrieval.store import IndexUnavailable

from .schema import Session, connect, shard_table, shard_url


class Reader:
    """A generation's queries: each statement on the server that holds its rows."""

    def __init__(self, url: str, schema: str):
        self.schema = schema
        self.damage: str | None = None  # what a query found not as the build wrote it
        self._session = Session(url)
        # Closed when the generation is let go (requests may still hold it after a swap).
        weakref.finalize(self, self._session.close)
        # The shards' parts of the passages (none on a single server): each must answer.
        parts = self.query(
            "SELECT i.inhrelid::regclass::text, s.srvname FROM pg_inherits i"
            " JOIN pg_foreign_table t ON t.ftrelid = i.inhrelid"
            " JOIN pg_foreign_server s ON s.oid = t.ftserver"
            " WHERE i.inhparent = %s::regclass",
            (f"{schema}.passages",),
        )
        self._parts = [part for part, _ in parts]
        self._shards: dict[str, Session] = {}  # by foreign server name; none on one server
        if parts:
            with connect(url) as connection:
                self._shards = {
                    server: Session(shard_url(connection, server)) for _, server in parts
                }
        for shard in self._shards.values():
            weakref.finalize(self, shard.close)

    def query(
        self, sql: str, parameters: Sequence[Any] = (), session: Session | None = None
    ) -> list[tuple]:
        """The rows of one statement on the coordinator (or on `session`)."""
        try:
            return (session or self._session).query(sql, parameters)
        except psycopg.ProgrammingError as exc:
            # SQLSTATE class 42 (a table or column missing): unlike a lost connection, lasting.
            raise self.damaged(f"its tables are not as the build wrote them ({exc})") from exc
        except Exception as exc:
            raise IndexUnavailable(f"database query failed ({exc})") from exc

    def damaged(self, what: str) -> IndexUnavailable:
        """The error for tables not as the build wrote them (remembered as the damage)."""
        self.damage = f"generation schema {self.schema} is damaged: {what}"
        return IndexUnavailable(self.damage)

    def on_parts(self, table: str, sql: str, parameters: Sequence[Any]) -> list[tuple]:
        """The rows of `sql` over one of the big tables (`{table}` in it): on the one
        server, or on each shard's own part in turn, one after the other."""
        if not self._shards:
            return self.query(sql.format(table=f"{self.schema}.{table}"), parameters)
        sql = sql.format(table=shard_table(self.schema, table))
        rows = []
        for server, shard in self._shards.items():
            try:
                rows += self.query(sql, parameters, shard)
            except IndexUnavailable as exc:
                raise IndexUnavailable(f'could not read from server "{server}": {exc}') from exc
        return rows

    def check(self) -> None:
        """Raise IndexUnavailable unless the coordinator, its shards' parts and the shards
        themselves answer."""
        self.query("SELECT 1")
        for part in self._parts:
            self.query(f"SELECT 1 FROM {part} LIMIT 1")
        for shard in self._shards.values():
            self.query("SELECT 1", session=shard)

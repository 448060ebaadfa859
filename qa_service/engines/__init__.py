"""The engines that hold an index's generations, each behind `retrieval.store`.

The registry: an engine's module is imported only when the settings name it, so
the PostgreSQL engine's driver (the `postgres` extra) is needed only there.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from qa_service.config import DEFAULTS
from qa_service.retrieval.store import Engine

# In the index folder (INDEX_DIR) of the machine that builds, whatever the engine: what
# builds keep between them (index/kept.py).
KEPT = "kept"


def configured_engine(config: Mapping) -> Engine:
    """The engine the settings name: BACKEND "whoosh" (INDEX_DIR) or "postgres" (DATABASE_URL);
    settings not given take their defaults."""
    config = {**DEFAULTS, **config}
    if config["BACKEND"] == "postgres":
        # psycopg is needed only here: the `postgres` extra of the package.
        from .postgres.engine import PostgresEngine

        shards = [name.strip() for name in config["DATABASE_SHARDS"].split(",") if name.strip()]
        kept_dir = Path(config["INDEX_DIR"]) / KEPT
        return PostgresEngine(config["DATABASE_URL"], shards, config["VERSIONS_DAYS"], kept_dir)
    if config["BACKEND"] != "whoosh":
        raise ValueError(f"unknown backend {config['BACKEND']!r}: whoosh or postgres")
    from .whoosh.engine import WhooshEngine

    return WhooshEngine(config["INDEX_DIR"], config["VERSIONS_DAYS"])


def engine_for(index: Engine | Path | str) -> Engine:
    """The engine holding an index: as given, or the Whoosh folder at a path."""
    from .whoosh.engine import WhooshEngine

    return WhooshEngine(index) if isinstance(index, (Path, str)) else index

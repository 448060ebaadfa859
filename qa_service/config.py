"""Settings of the web app: defaults, then QA_* environment variables, then overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULTS = {
    "SEEDS_DIR": "seeds",
    "INDEX_DIR": "index",
    # Where the index lives: "whoosh" (files under INDEX_DIR) or "postgres" (DATABASE_URL).
    "BACKEND": "whoosh",
    "DATABASE_URL": "",
    # postgres_fdw servers on that database to spread passages over ("" for none).
    "DATABASE_SHARDS": "",
    # API keys (qa-service keys add), stored as digests; "" for keys.json in INDEX_DIR.
    "API_KEYS_FILE": "",
    # 1: the JSON API answers only requests with a key of scope "read" (and the pages none).
    "READ_NEEDS_KEY": 0,
    # Days an article's earlier text stays retrievable for old citations after no build holds it.
    "VERSIONS_DAYS": 365,
    # Requests to /api are small JSON documents; anything bigger is refused with 413.
    "MAX_CONTENT_LENGTH": 16 * 1024,
    # Articles written over the API are larger: their own limit (413 above).
    "MAX_SOURCE_BYTES": 2 * 1024 * 1024,
    # A write indexes the articles that differ from the last full build as a layer over it
    # while they hold at most this share of its passages; beyond, it builds all again.
    "LAYER_SHARE": 0.1,
    # A write's builder process waits this long for the next write before it ends: one
    # handed to it is indexed without starting, loading and opening all again (0: never).
    "BUILDER_IDLE_SECONDS": 30.0,
    # Where the audit log of writes goes (JSON lines), besides the service's own log.
    "AUDIT_LOG": "",
    # Finished answers kept per worker process (0 turns the cache off), and the most
    # bytes of JSON they may hold together.
    "ANSWER_CACHE_SIZE": 2048,
    "ANSWER_CACHE_BYTES": 32 * 1024 * 1024,
    # Reverse proxies in front whose X-Forwarded-For/-Proto/-Host/-Prefix are trusted.
    "PROXY_HOPS": 0,
    # Where readers reach the service ("https://qa.example.org"): citation links are
    # made from it, never from the request's Host header; relative links without it.
    "PUBLIC_URL": "",
    # Host names the service answers to, comma-separated ("" for any): others get 400.
    "TRUSTED_HOSTS": "",
    # Questions the home page offers as examples, separated by "|" (""): the folder's
    # about.toml, else questions drawn from the articles that the service answers.
    "EXAMPLE_QUESTIONS": "",
}
# Environment variable -> setting.
ENVIRONMENT = {
    "QA_SEEDS": "SEEDS_DIR",
    "QA_INDEX": "INDEX_DIR",
    "QA_BACKEND": "BACKEND",
    "QA_DATABASE_URL": "DATABASE_URL",
    "QA_DATABASE_SHARDS": "DATABASE_SHARDS",
    "QA_VERSIONS_DAYS": "VERSIONS_DAYS",
    "QA_API_KEYS_FILE": "API_KEYS_FILE",
    "QA_READ_NEEDS_KEY": "READ_NEEDS_KEY",
    "QA_MAX_BODY_BYTES": "MAX_CONTENT_LENGTH",
    "QA_MAX_SOURCE_BYTES": "MAX_SOURCE_BYTES",
    "QA_LAYER_SHARE": "LAYER_SHARE",
    "QA_BUILDER_IDLE_SECONDS": "BUILDER_IDLE_SECONDS",
    "QA_AUDIT_LOG": "AUDIT_LOG",
    "QA_ANSWER_CACHE_SIZE": "ANSWER_CACHE_SIZE",
    "QA_PROXY_HOPS": "PROXY_HOPS",
    "QA_ANSWER_CACHE_BYTES": "ANSWER_CACHE_BYTES",
    "QA_PUBLIC_URL": "PUBLIC_URL",
    "QA_TRUSTED_HOSTS": "TRUSTED_HOSTS",
    "QA_EXAMPLE_QUESTIONS": "EXAMPLE_QUESTIONS",
}


def load_config(overrides: Mapping | None = None) -> dict:
    """The effective settings: defaults, environment, then `overrides`."""
    config = dict(DEFAULTS)
    for variable, key in ENVIRONMENT.items():
        if variable in os.environ:
            value = os.environ[variable]
            default = DEFAULTS[key]
            if isinstance(default, (int, float)):
                try:
                    value = type(default)(value)
                except ValueError:
                    raise ValueError(f"{variable}={value!r}: not a number") from None
            config[key] = value
    config.update(overrides or {})
    return config


def keys_path(config: Mapping) -> Path:
    """Where the API keys are kept: API_KEYS_FILE, else keys.json in the index folder (so
    `qa-service keys add` and the server find the same file with no setting)."""
    return Path(config["API_KEYS_FILE"] or Path(config["INDEX_DIR"]) / "keys.json")

"""API keys: named, scoped, and stored only as SHA-256 digests.

The keys file is JSON, `{"keys": [{"name": …, "sha256": …, "scopes": ["read", "write"]}]}`,
written by `qa-service keys add` (which shows the secret once) and `keys remove`. A
running service reads it again when it changes, so a key added or removed counts
within a second, without a restart. A presented key is
hashed and compared with every stored digest in constant time, so neither the
comparison nor its duration says which key, or how much of one, matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SCOPES = ("read", "write")
# How often a running service looks whether the keys file changed.
CHECK_SECONDS = 1.0
# Secrets carry a prefix so that a leaked one is recognisable (and grep-able) as ours.
PREFIX = "qa_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: its name, the digest of its secret, what it may do."""

    name: str
    sha256: str
    scopes: tuple[str, ...]


def digest(secret: str) -> str:
    """The SHA-256 of a secret, as stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def load_keys(path: Path | str) -> list[ApiKey]:
    """The keys in a keys file; ValueError says what is wrong with a bad one."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    keys = [
        ApiKey(item["name"], item["sha256"], tuple(item["scopes"])) for item in data.get("keys", [])
    ]
    for key in keys:
        if not _NAME.fullmatch(key.name) or not re.fullmatch(r"[0-9a-f]{64}", key.sha256):
            raise ValueError(f"{path}: a key needs a plain name and a SHA-256 digest")
        if not set(key.scopes) <= set(SCOPES):
            raise ValueError(f"{path}: key {key.name!r} has unknown scopes {key.scopes}")
    return keys


def add_key(path: Path | str, name: str, scopes: Sequence[str]) -> str:
    """Add a new key to the keys file (created if missing); return its secret, shown once."""
    if not _NAME.fullmatch(name):
        raise ValueError("a key's name is 1-64 letters, digits, '.', '_' or '-'")
    if not scopes or not set(scopes) <= set(SCOPES):
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    path = Path(path)
    keys = load_keys(path) if path.exists() else []
    if any(key.name == name for key in keys):
        raise ValueError(f"there is already a key named {name!r}")
    secret = PREFIX + secrets.token_urlsafe(32)
    keys.append(ApiKey(name, digest(secret), tuple(dict.fromkeys(scopes))))
    _write(path, keys)
    return secret


def remove_key(path: Path | str, name: str) -> None:
    """Remove the key `name` from the keys file (ValueError when there is none)."""
    path = Path(path)
    keys = load_keys(path) if path.exists() else []
    if not any(key.name == name for key in keys):
        raise ValueError(f"there is no key named {name!r}")
    _write(path, [key for key in keys if key.name != name])


class KeysFile:
    """A keys file as a running service reads it: loaded at start (a bad file stops the
    start), then again whenever it changes, looked at most every CHECK_SECONDS.

    A file not made yet holds no key. One that goes missing or cannot be read any more
    leaves no key valid (and says so in the log): a removed key must never stay usable
    because its file broke.
    """

    def __init__(self, path: Path | str | None):
        self.path = Path(path) if path else None
        # No file yet is no key yet: `qa-service keys add` makes it, and it counts then.
        self._keys = load_keys(self.path) if self.path and self.path.exists() else []
        self._seen = self._signature()
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()

    def _signature(self) -> tuple | None:
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def current(self) -> list[ApiKey]:
        """The keys as the file holds them now (as of at most CHECK_SECONDS ago)."""
        if self.path is None:
            return []
        now = time.monotonic()
        if now - self._checked_at < CHECK_SECONDS:
            return self._keys
        with self._lock:
            self._checked_at = now
            signature = self._signature()
            if signature != self._seen:
                self._seen = signature
                try:
                    self._keys = load_keys(self.path) if signature is not None else []
                except (OSError, ValueError) as exc:
                    log.error("no API key is valid until %s is fixed: %s", self.path, exc)
                    self._keys = []
        return self._keys


def match(keys: Iterable[ApiKey], secret: str) -> ApiKey | None:
    """The key whose secret this is, or None; every stored digest is compared, in constant time."""
    presented = digest(secret)
    found = None
    for key in keys:
        if hmac.compare_digest(presented, key.sha256):
            found = key
    return found


def _write(path: Path, keys: list[ApiKey]) -> None:
    """Replace the keys file in one rename, readable by its owner only."""
    body = {"keys": [{"name": k.name, "sha256": k.sha256, "scopes": list(k.scopes)} for k in keys]}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(body, file, indent=2)
    os.replace(partial, path)

"""Real PostgreSQL servers for tests: Debian's binaries, a temporary folder, loopback only.

Each server is its own `initdb` cluster started with `pg_ctl` on a free port
of 127.0.0.1, run as the unprivileged `postgres` user when we are root
(PostgreSQL refuses to run as root), and removed afterwards. No system service
is involved. `make postgres` installs the binaries.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support import free_port

DATABASE = "qa"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make postgres`")
    return Path(found[-1]).parent


def _version(path: str) -> int:
    return int(Path(path).parent.parent.name)


def _as_server_user(command: list[str]) -> list[str]:
    # Root may not run a PostgreSQL server; the Debian package's user may.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    """One running cluster: its URL, port and folder; stop() and start() it at will."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        """The libpq URL of its `qa` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _pg_ctl(self, *arguments: str) -> None:
        command = [str(_bin_dir() / "pg_ctl"), "-D", str(self.folder / "data"), *arguments]
        subprocess.run(_as_server_user(command), check=True, capture_output=True)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg_ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def stop(self) -> None:
        """Stop the server at once, as a crash would, once what it committed is on disk
        (with synchronous_commit off, an immediate stop loses the last commits)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.sql("CHECKPOINT")
        self._pg_ctl("-m", "immediate", "stop")

    def sql(self, statement: str, database: str = DATABASE) -> None:
        """Run statements as the superuser (psql, so no driver is needed for setup)."""
        command = [str(_bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1",
                   "-qc", statement]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A new PostgreSQL cluster with an empty `qa` database, removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="qa-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    initdb = [str(_bin_dir() / "initdb"), "-D", str(folder / "data"), "-A", "trust",
              "-U", "postgres", "-E", "UTF8", "--locale=C"]  # fmt: skip
    subprocess.run(_as_server_user(initdb), check=True, capture_output=True)
    server = PostgresServer(folder, free_port())
    server.start()
    try:
        server.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Cluster:
    """A coordinator whose postgres_fdw servers `shard0`… are the shard servers."""

    coordinator: PostgresServer
    shards: list[PostgresServer]

    @property
    def shard_names(self) -> list[str]:
        """The foreign servers' names on the coordinator (QA_DATABASE_SHARDS)."""
        return [f"shard{number}" for number in range(len(self.shards))]


@contextlib.contextmanager
def postgres_cluster(shards: int = 2) -> Iterator[Cluster]:
    """A coordinator and `shards` shard servers, joined by postgres_fdw (async scans on)."""
    with contextlib.ExitStack() as stack:
        coordinator = stack.enter_context(postgres_server())
        servers = [stack.enter_context(postgres_server()) for _ in range(shards)]
        cluster = Cluster(coordinator, servers)
        statements = ["CREATE EXTENSION postgres_fdw"]
        for name, shard in zip(cluster.shard_names, servers, strict=True):
            statements += [
                f"CREATE SERVER {name} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host"
                f" '127.0.0.1', port '{shard.port}', dbname '{DATABASE}', async_capable 'true')",
                f"CREATE USER MAPPING FOR postgres SERVER {name} OPTIONS (user 'postgres')",
            ]
        coordinator.sql("; ".join(statements))
        yield cluster

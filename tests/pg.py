"""A real PostgreSQL server for tests, started with ``initdb`` and ``pg_ctl`` on a loopback port.

PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres``
system user and every server command runs through ``runuser``. Each test gets a fresh schema
of one shared database, named in its URL's ``search_path`` (a schema costs a millisecond,
``CREATE DATABASE`` sixty).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.process import free_port

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir"]

_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql*/bin")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started on this machine; the message says why."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else the newest known install."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(
        (p for pattern in _SEARCH for p in Path("/").glob(pattern.lstrip("/"))),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")],
    )
    for candidate in reversed(found):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _run_as() -> tuple[list[str], int | None]:
    """The command prefix and uid to run server commands with (root cannot run PostgreSQL)."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no 'postgres' user to run PostgreSQL as"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and runuser is missing")
    return [runuser, "-u", "postgres", "--"], user.pw_uid


@dataclass
class PostgresServer:
    """One throwaway cluster: its own data directory, socket directory and port."""

    bindir: Path
    root: Path
    port: int = 0
    #: fsync and full-page writes on, as in production (benchmarks); off for tests.
    durable: bool = False
    _prefix: list[str] = field(default_factory=list)
    _names: itertools.count[int] = field(default_factory=itertools.count)
    _shared: str | None = None

    @classmethod
    def start_new(cls, *, durable: bool = False) -> PostgresServer:
        """initdb and start a cluster in a fresh temporary directory.

        Raises:
            PostgresUnavailable: no binaries, no way to run them, or the server did not start.
        """
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable("initdb/pg_ctl not found on PATH or in /usr/lib/postgresql")
        prefix, uid = _run_as()
        # Not under pytest's tmp_path: that is private to root, and the server user must
        # reach its data directory and socket.
        root = Path(tempfile.mkdtemp(prefix="trailkeep-pg-"))
        if uid is not None:
            os.chown(root, uid, -1)
        server = cls(bindir, root, durable=durable, _prefix=prefix)
        try:
            server._run("initdb", "-D", str(server.datadir), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._prefix, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{tool} {' '.join(args)} failed: {done.stderr.strip()}\n{tail}"
            )

    def start(self) -> None:
        """Start (or start again) the server, on a new free port the first time."""
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            port = self.port or free_port()
            options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1"
            options += " -c max_connections=300"
            if not self.durable:
                options += " -c fsync=off -c full_page_writes=off"
            try:
                self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
                          "-l", str(self.root / "server.log"), "-o", options)  # fmt: skip
            except PostgresUnavailable:
                if attempt == 2 or self.port:
                    raise
                continue
            self.port = port
            return

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.datadir))

    def destroy(self) -> None:
        """Stop the server if it runs, and delete its files."""
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "db") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def create_schema(self, prefix: str = "t") -> str:
        """A new empty schema in the shared test database; returns a URL that works in it."""
        if self._shared is None:
            self._shared = self.create_database("tests")
        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self._shared, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"'.encode())
        return f"{self._shared}?options=-c%20search_path%3D{name}"

"""The SQLite backend: WAL, one writer thread with group commit, a read connection per thread."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from trailkeep.errors import (
    ConflictError,
    QueryTimeoutError,
    StorageError,
    UnavailableError,
)
from trailkeep.storage._sqlite_audit import SQLiteAudit
from trailkeep.storage._sqlite_prune import WalCheckpoints
from trailkeep.storage._sqlite_reads import SQLiteReads
from trailkeep.storage._sqlite_redaction import SQLiteRedaction
from trailkeep.storage._sqlite_tenants import SQLiteTenants
from trailkeep.storage._sqlite_tree import SQLiteTree
from trailkeep.storage._sqlite_writer import (
    MAX_GROUP_EVENTS,
    NEAR_DUE_GROUP_EVENTS,
    NEAR_DUE_SECONDS,
    OPTIMIZE_SECONDS,
    SQLiteWriter,
    _AppendJob,
)
from trailkeep.storage._watchdog import Watchdog
from trailkeep.storage.base import (
    DEFAULT_QUERY_TIMEOUT,
    Store,
)
from trailkeep.storage.sqlite_schema import MIGRATIONS
from trailkeep.storage.tree import (
    LeafFunction,
)

__all__ = [
    "MAX_GROUP_EVENTS",
    "NEAR_DUE_GROUP_EVENTS",
    "NEAR_DUE_SECONDS",
    "OPTIMIZE_SECONDS",
    "SQLiteStore",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class SQLiteStore(
    SQLiteTenants, SQLiteReads, SQLiteTree, SQLiteRedaction, SQLiteWriter, SQLiteAudit, Store
):
    """A store in one SQLite file.

    Args:
        path: the database file (created if missing).
        leaf_function: computes an event's Merkle leaf hash once its ``seq`` is known;
            None stores events without a tree (used only to measure integrity's cost).
        synchronous: ``FULL`` (default) fsyncs each group commit, so an acknowledged
            event survives power loss; ``NORMAL`` survives a killed process only.
        query_timeout: seconds an event read may run before it is interrupted
            (``QueryTimeoutError``).
    """

    dialect = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        leaf_function: LeafFunction | None,
        synchronous: str = "FULL",
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self._path = path
        self._synchronous = synchronous
        self.query_timeout = query_timeout
        self._watchdog = Watchdog()
        self._leaf_function = leaf_function
        self._local = threading.local()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_AppendJob | None] = queue.SimpleQueue()
        self._writer_conn = self._connect(writer=True)
        self._wal_checkpoints = WalCheckpoints(
            self._connect, None if path == ":memory:" else f"{path}-wal"
        )
        self._jobs_behind = 0
        self._writer: threading.Thread | None = None
        self._closed = False

    # -- connections ----------------------------------------------------------------------

    def _connect(self, *, writer: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                # The writer's statements (storage._sqlite_sql.insert_many's fixed shapes) stay
                # compiled.
                cached_statements=512 if writer else 128,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA foreign_keys=ON")
            # The page cache is per connection, and there is one reader per server thread:
            # keep theirs small (the OS page cache is shared) and give the writer more.
            conn.execute(f"PRAGMA cache_size={-65536 if writer else -4096}")
            conn.execute("PRAGMA temp_store=MEMORY")
            # Fewer, larger WAL checkpoints: each one stalls the writer.
            conn.execute("PRAGMA wal_autocheckpoint=10000")
        except sqlite3.Error as exc:
            raise UnavailableError(f"cannot open SQLite database {self._path}: {exc}") from exc
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._all_readers.append(conn)
        return conn

    def _read(self, fn: Callable[[sqlite3.Connection], T], *, timed: bool = False) -> T:
        """Run ``fn`` in one read transaction, so it sees a single snapshot; a ``timed`` read
        stops at ``query_timeout`` with ``QueryTimeoutError``."""
        conn = self._reader()
        ticket = self._watchdog.watch(conn, self.query_timeout) if timed else None
        interrupted = False
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                interrupted = ticket is not None and self._watchdog.unwatch(ticket)
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._closed:  # interrupted, or its connection closed, by ``close``
                raise UnavailableError("the server is shutting down; retry") from None
            if interrupted and isinstance(exc, sqlite3.OperationalError):
                raise QueryTimeoutError(
                    f"the query ran past the {self.query_timeout:g} s limit (query_timeout);"
                    " narrow it (a shorter time range, fewer terms) and retry"
                ) from None
            raise StorageError(f"SQLite read failed: {exc}") from exc

    @contextmanager
    def _admin_tx(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction for administration (tenants, keys).

        Uses its own connection so it never interleaves with the writer thread's group
        commit; SQLite serializes the two with its write lock.
        """
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite write failed: {exc}") from exc
        finally:
            conn.close()

    # -- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        conn = self._writer_conn
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        applied = []
        for version, name, statements in MIGRATIONS:
            # Checked under the write lock, so two processes starting at once apply it once.
            conn.execute("BEGIN IMMEDIATE")
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,))
            if done.fetchone() is not None:
                conn.execute("COMMIT")
                continue
            try:
                for statement in statements:
                    if isinstance(statement, str):
                        conn.execute(statement)
                    else:
                        statement(conn)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
                    (version, name),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            applied.append(f"{version}: {name}")
        # Planner statistics, refreshed where stale (also every few minutes by the writer).
        conn.execute("PRAGMA analysis_limit=1000")
        conn.execute("PRAGMA optimize")
        return applied

    def _ensure_writer(self) -> None:
        if self._writer is None:
            if self._closed:
                raise UnavailableError("the store is closed")
            self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer")
            self._writer.daemon = True
            self._writer.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A read still running now belongs to a request the server gave up on (its shutdown
        # grace is over): end it, or a scan of a million rows holds the process's exit for up
        # to ``query_timeout``.
        with self._readers_lock:
            for conn in self._all_readers:
                conn.interrupt()
        self._watchdog.close()
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
        self._writer_conn.close()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()

    def ping(self) -> None:
        try:
            self._reader().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise UnavailableError(f"SQLite is not answering: {exc}") from exc

"""The SQLite backend: WAL, one writer thread with group commit, a read connection per thread."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from trailkeep.errors import (
    ConflictError,
    NotFoundError,
    QueryTimeoutError,
    StorageError,
    TrailkeepError,
    UnavailableError,
)
from trailkeep.merkle import NodeID
from trailkeep.model.commitments import SALT_SIZE, field_paths
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.model.tenant import ApiKey, Role, Tenant
from trailkeep.query.facets import FacetCounts
from trailkeep.query.filters import EventQuery
from trailkeep.query.fulltext import search_document
from trailkeep.storage._compile import STORE_DIALECTS
from trailkeep.storage._groups import take_group
from trailkeep.storage._json_sql import from_key
from trailkeep.storage._select import count_sql, distinct_sql, select_sql
from trailkeep.storage._sequencer import GroupSequencer, Plan
from trailkeep.storage._sqlite_audit import SQLiteAudit
from trailkeep.storage._sqlite_prune import prune_batch
from trailkeep.storage._sqlite_sql import (
    ROLLUP_AT,
    add_rollups,
    adjust_rollups,
    insert_many,
    sqlite_facets,
)
from trailkeep.storage._watchdog import Watchdog
from trailkeep.storage.base import (
    DEFAULT_QUERY_TIMEOUT,
    Appended,
    Evidence,
    Page,
    PruneBatch,
    PrunedEvent,
    Store,
    StoredCheckpoint,
)
from trailkeep.storage.rows import DERIVED_COLUMNS, EVENT_COLUMNS, event_row, unpack_salts
from trailkeep.storage.sqlite_schema import MIGRATIONS
from trailkeep.storage.tree import (
    EVENT_LEAF,
    NODE_TABLES,
    LeafFunction,
    TreeHead,
    TreeName,
)

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How many events one group commit may take before it commits and starts the next.
MAX_GROUP_EVENTS = 2_000
#: ... and as ``after_commit`` comes due (within ``NEAR_DUE_SECONDS``), so that a checkpoint
#: is not signed a whole big group late.
NEAR_DUE_GROUP_EVENTS = 250
NEAR_DUE_SECONDS = 0.2
#: How often the writer refreshes the planner's statistics where they went stale.
OPTIMIZE_SECONDS = 300.0
_EVENT_FIELDS = f"tenant_id, seq, id, received_at, body, {EVENT_LEAF}"
_EVIDENCE_FIELDS = _EVENT_FIELDS + ", salts, redactions"
_CHECKPOINT_FIELDS = "tenant_id, size, root_hash, note, signed_at"
_PRUNED = (
    "SELECT p.tenant_id, p.seq, p.id, t.hash, p.pruned_at FROM pruned_events p"
    " LEFT JOIN tree_nodes t ON t.tenant_id = p.tenant_id AND t.level = 0 AND t.idx = p.seq"
)
_DIALECT = STORE_DIALECTS["sqlite"]
#: Idempotency keys looked up per query (well under SQLite's limit on bound parameters).
_KEYS_PER_LOOKUP = 500


@dataclass(slots=True)
class _AppendJob:
    tenant_id: str
    events: Sequence[NewEvent]
    #: Runs first, in the job's savepoint: a change that must commit with the events.
    before: Callable[[sqlite3.Connection], None] | None = None
    future: Future[list[Appended]] = field(default_factory=Future)


def _row_event(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent.from_row(row[0], row[1], row[2], row[3], row[4], row[5])


def _row_evidence(row: tuple[Any, ...]) -> Evidence:
    event = _row_event(row)
    redacted = {p: bytes.fromhex(h) for p, h in orjson.loads(row[7]).items()} if row[7] else {}
    return Evidence(event, unpack_salts(event.content, row[6]), redacted)


def _row_pruned(row: tuple[Any, ...]) -> PrunedEvent:
    return PrunedEvent(row[0], row[1], row[2], None if row[3] is None else bytes(row[3]), row[4])


def _row_checkpoint(row: tuple[Any, ...]) -> StoredCheckpoint:
    return StoredCheckpoint(row[0], row[1], row[2], row[3], row[4])


class SQLiteStore(SQLiteAudit, Store):
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
        self._writer: threading.Thread | None = None
        self._closed = False

    # -- connections ----------------------------------------------------------------------

    def _connect(self, *, writer: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
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
        except sqlite3.OperationalError as exc:
            if interrupted:
                raise QueryTimeoutError(
                    f"the query ran past the {self.query_timeout:g} s limit (query_timeout);"
                    " narrow it (a shorter time range, fewer terms) and retry"
                ) from None
            raise StorageError(f"SQLite read failed: {exc}") from exc
        except sqlite3.Error as exc:
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

    # -- tenants and keys ------------------------------------------------------------------

    def create_tenant(self, tenant: Tenant) -> None:
        try:
            with self._admin_tx() as conn:
                conn.execute(
                    "INSERT INTO tenants (id, created_at, settings) VALUES (?, ?, ?)",
                    (tenant.id, tenant.created_at, orjson.dumps(tenant.settings).decode()),
                )
                conn.execute(
                    "INSERT INTO tree_heads (tenant_id, size, frontier) VALUES (?, 0, x'')",
                    (tenant.id,),
                )
        except ConflictError:
            raise ConflictError(f"tenant {tenant.id!r} already exists") from None

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = self._read(
            lambda c: c.execute(
                "SELECT id, created_at, settings FROM tenants WHERE id = ?", (tenant_id,)
            ).fetchone()
        )
        return None if row is None else Tenant(row[0], row[1], orjson.loads(row[2]))

    def list_tenants(self) -> list[Tenant]:
        rows = self._read(
            lambda c: c.execute(
                "SELECT id, created_at, settings FROM tenants ORDER BY id"
            ).fetchall()
        )
        return [Tenant(r[0], r[1], orjson.loads(r[2])) for r in rows]

    def update_tenant_settings(self, tenant_id: str, settings: dict[str, Any]) -> Tenant:
        with self._admin_tx() as conn:
            cur = conn.execute(
                "UPDATE tenants SET settings = ? WHERE id = ?",
                (orjson.dumps(settings).decode(), tenant_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no tenant {tenant_id!r}")
        tenant = self.get_tenant(tenant_id)
        assert tenant is not None
        return tenant

    def create_key(self, key: ApiKey) -> None:
        with self._admin_tx() as conn:
            conn.execute(
                "INSERT INTO api_keys (client_id, secret_hash, tenant_id, role, name, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.client_id,
                    key.secret_hash,
                    key.tenant_id,
                    key.role.value,
                    key.name,
                    key.created_at,
                    key.expires_at,
                ),
            )

    _KEY_FIELDS = (
        "client_id, secret_hash, tenant_id, role, created_at, name, revoked_at, expires_at,"
        " last_used_at"
    )

    @staticmethod
    def _key(row: tuple[Any, ...]) -> ApiKey:
        return ApiKey(row[0], row[1], row[2], Role(row[3]), *row[4:9])

    def get_key(self, client_id: str) -> ApiKey | None:
        row = self._read(
            lambda c: c.execute(
                f"SELECT {self._KEY_FIELDS} FROM api_keys WHERE client_id = ?",  # noqa: S608
                (client_id,),
            ).fetchone()
        )
        return None if row is None else self._key(row)

    def list_keys(self, tenant_id: str | None) -> list[ApiKey]:
        sql = f"SELECT {self._KEY_FIELDS} FROM api_keys WHERE tenant_id IS ? ORDER BY created_at"  # noqa: S608
        rows = self._read(lambda c: c.execute(sql, (tenant_id,)).fetchall())
        return [self._key(r) for r in rows]

    def revoke_key(self, client_id: str, revoked_at: str) -> None:
        with self._admin_tx() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
                (revoked_at, client_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no active key {client_id!r}")

    def touch_keys(self, used: dict[str, str]) -> None:
        with self._admin_tx() as conn:
            conn.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE client_id = ?"
                " AND (last_used_at IS NULL OR last_used_at < ?)",
                [(at, client_id, at) for client_id, at in used.items()],
            )

    # -- events: reads ---------------------------------------------------------------------

    def get_event(self, tenant_id: str, event_id: str) -> StoredEvent | None:
        row = self._read(
            lambda c: c.execute(
                f"SELECT {_EVENT_FIELDS} FROM events WHERE id = ? AND tenant_id = ?",  # noqa: S608
                (event_id, tenant_id),
            ).fetchone()
        )
        return None if row is None else _row_event(row)

    def list_events(self, tenant_id: str, query: EventQuery) -> Page:
        sql = select_sql(tenant_id, query, _DIALECT, _EVENT_FIELDS)

        def run(conn: sqlite3.Connection) -> Page:
            size_row = conn.execute(
                "SELECT size FROM tree_heads WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
            rows = conn.execute(sql.sql, sql.params).fetchall()
            return Page([_row_event(r) for r in rows], size_row[0] if size_row else 0)

        return self._read(run, timed=True)

    def select(self, tenant_id: str, query: EventQuery) -> list[StoredEvent]:
        sql = select_sql(tenant_id, query, _DIALECT, _EVENT_FIELDS)
        rows = self._read(lambda conn: conn.execute(sql.sql, sql.params).fetchall(), timed=True)
        return [_row_event(r) for r in rows]

    def count(self, tenant_id: str, query: EventQuery) -> int:
        sql = count_sql(tenant_id, query, _DIALECT)
        row = self._read(lambda conn: conn.execute(sql.sql, sql.params).fetchone(), timed=True)
        return 0 if row is None else int(row[0])

    def distinct(
        self, tenant_id: str, field: tuple[str, ...], query: EventQuery, limit: int
    ) -> list[tuple[object, int]]:
        sql, plain = distinct_sql(tenant_id, field, query, _DIALECT, limit)
        rows = self._read(lambda conn: conn.execute(sql.sql, sql.params).fetchall(), timed=True)
        if plain:
            return [(r[0], r[1]) for r in rows]
        return [(from_key(r[0], r[1], r[2], r[3]), r[4]) for r in rows]

    def facets(self, tenant_id: str, query: EventQuery, top: int) -> FacetCounts:
        return self._read(lambda conn: sqlite_facets(conn, tenant_id, query, top), timed=True)

    def log_size(self, tenant_id: str) -> int:
        row = self._read(
            lambda c: c.execute(
                "SELECT size FROM tree_heads WHERE tenant_id = ?", (tenant_id,)
            ).fetchone()
        )
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return int(row[0])

    # -- the tree ----------------------------------------------------------------------------

    def tree_head(self, tenant_id: str) -> TreeHead:
        row = self._read(
            lambda c: c.execute(
                "SELECT size, frontier, pangea_frontier FROM tree_heads WHERE tenant_id = ?",
                (tenant_id,),
            ).fetchone()
        )
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return TreeHead.unpack(row[0], row[1], row[2])

    def read_nodes(
        self, tenant_id: str, ids: Sequence[NodeID], tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        sql = (
            f"SELECT hash FROM {NODE_TABLES[tree]}"  # noqa: S608 - a fixed table name
            " WHERE tenant_id = ? AND level = ? AND idx = ?"
        )

        def run(conn: sqlite3.Connection) -> list[bytes]:
            out = []
            for node in ids:
                row = conn.execute(
                    sql,
                    (tenant_id, node.level, node.index),
                ).fetchone()
                if row is None or row[0] is None:
                    raise NotFoundError(f"tree node {node} of tenant {tenant_id!r} is not stored")
                out.append(bytes(row[0]))
            return out

        return self._read(run)

    def leaf_hashes(
        self, tenant_id: str, start: int, end: int, tree: TreeName = "rfc9162"
    ) -> list[bytes]:
        rows = self._read(
            lambda c: c.execute(
                f"SELECT hash FROM {NODE_TABLES[tree]}"  # noqa: S608 - a fixed table name
                " WHERE tenant_id = ? AND level = 0 AND idx >= ? AND idx < ? ORDER BY idx",
                (tenant_id, start, end),
            ).fetchall()
        )
        return [bytes(r[0]) for r in rows]

    def checkpoint_candidates(self) -> list[tuple[str, TreeHead, StoredCheckpoint | None]]:
        def run(conn: sqlite3.Connection) -> list[tuple[str, TreeHead, StoredCheckpoint | None]]:
            rows = conn.execute(
                "SELECT h.tenant_id, h.size, h.frontier,"
                " (SELECT max(size) FROM checkpoints c WHERE c.tenant_id = h.tenant_id)"
                " FROM tree_heads h"
            ).fetchall()
            out = []
            for tenant_id, size, frontier, last_size in rows:
                if last_size is not None and last_size >= size:
                    continue
                last = None
                if last_size is not None:
                    last = _row_checkpoint(
                        conn.execute(
                            f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints"  # noqa: S608
                            " WHERE tenant_id = ? AND size = ?",
                            (tenant_id, last_size),
                        ).fetchone()
                    )
                out.append((tenant_id, TreeHead.unpack(size, frontier), last))
            return out

        return self._read(run)

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> bool:
        # Through the writer queue, like every write: a second write connection would contend
        # with group commits for SQLite's lock.
        added: list[bool] = []
        values = (
            checkpoint.tenant_id,
            checkpoint.size,
            checkpoint.root_hash,
            checkpoint.note,
            checkpoint.signed_at,
        )

        def insert(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                f"INSERT OR IGNORE INTO checkpoints ({_CHECKPOINT_FIELDS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?)",
                values,
            )
            added.append(cur.rowcount == 1)

        if threading.current_thread() is self._writer:  # from after_commit: no queue to wait on
            try:
                insert(self._writer_conn)  # autocommit: a transaction of its own
            except sqlite3.Error as exc:
                raise _storage_error(exc) from exc
        else:
            self._submit(_AppendJob(checkpoint.tenant_id, [], before=insert)).result()
        return added[0]

    def _checkpoint(self, sql: str, params: tuple[Any, ...]) -> StoredCheckpoint | None:
        row = self._read(lambda c: c.execute(sql, params).fetchone())
        return None if row is None else _row_checkpoint(row)

    def latest_checkpoint(self, tenant_id: str) -> StoredCheckpoint | None:
        return self._checkpoint(
            f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints WHERE tenant_id = ?"  # noqa: S608
            " ORDER BY size DESC LIMIT 1",
            (tenant_id,),
        )

    def checkpoint_at(self, tenant_id: str, size: int) -> StoredCheckpoint | None:
        return self._checkpoint(
            f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints"  # noqa: S608
            " WHERE tenant_id = ? AND size = ?",
            (tenant_id, size),
        )

    def list_checkpoints(self, tenant_id: str) -> list[StoredCheckpoint]:
        rows = self._read(
            lambda c: c.execute(
                f"SELECT {_CHECKPOINT_FIELDS} FROM checkpoints"  # noqa: S608
                " WHERE tenant_id = ? ORDER BY size",
                (tenant_id,),
            ).fetchall()
        )
        return [_row_checkpoint(r) for r in rows]

    # -- evidence and erasure --------------------------------------------------------------

    def get_evidence(self, tenant_id: str, event_id: str) -> Evidence | None:
        row = self._read(
            lambda c: c.execute(
                f"SELECT {_EVIDENCE_FIELDS} FROM events WHERE id = ? AND tenant_id = ?",  # noqa: S608
                (event_id, tenant_id),
            ).fetchone()
        )
        return None if row is None else _row_evidence(row)

    def scan_evidence(self, tenant_id: str, start: int, end: int) -> list[Evidence]:
        rows = self._read(
            lambda c: c.execute(
                f"SELECT {_EVIDENCE_FIELDS} FROM events"  # noqa: S608
                " WHERE tenant_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
                (tenant_id, start, end),
            ).fetchall()
        )
        return [_row_evidence(r) for r in rows]

    def redact(
        self, tenant_id: str, event_id: str, erased: Evidence, audit: NewEvent
    ) -> Future[list[Appended]]:
        content = erased.event.content
        row = event_row(tenant_id, 0, _redacted_event(event_id, content, erased.salts))
        derived = dict(zip(EVENT_COLUMNS, row, strict=True))
        assignments = ", ".join(f"{c} = ?" for c in DERIVED_COLUMNS)
        redactions = orjson.dumps({p: c.hex() for p, c in sorted(erased.redacted.items())})
        params = (*(derived[c] for c in DERIVED_COLUMNS), redactions, event_id, tenant_id)
        sql = f"UPDATE events SET {assignments}, redactions = ? WHERE id = ? AND tenant_id = ?"  # noqa: S608

        text = search_document(content)

        columns = ", ".join(ROLLUP_AT)
        before_sql = f"SELECT {columns} FROM events WHERE id = ? AND tenant_id = ?"  # noqa: S608

        def update(conn: sqlite3.Connection) -> None:
            old = conn.execute(before_sql, (event_id, tenant_id)).fetchone()
            if old is None or conn.execute(sql, params).rowcount == 0:
                raise NotFoundError(f"no event {event_id!r} in this tenant")
            adjust_rollups(conn, tenant_id, dict(zip(ROLLUP_AT, old, strict=True)), derived)
            conn.execute(
                "UPDATE events_fts SET message = ?, fields = ? WHERE rowid ="
                " (SELECT row_id FROM events WHERE id = ? AND tenant_id = ?)",
                (text.message, text.fields, event_id, tenant_id),
            )

        return self._submit(_AppendJob(tenant_id, [audit], before=update))

    # -- retention -------------------------------------------------------------------------

    def prune(self, tenant_id: str, cutoff: str, limit: int, pruned_at: str) -> PruneBatch:
        done: list[PruneBatch] = []

        def delete(conn: sqlite3.Connection) -> None:
            done.append(
                prune_batch(conn, tenant_id, cutoff, limit, pruned_at, self._writes_waiting)
            )

        self._submit(_AppendJob(tenant_id, [], before=delete)).result()
        return done[0]

    def _writes_waiting(self) -> bool:
        """Whether a write waits for the writer (a prune batch then ends early)."""
        return not self._queue.empty()

    def get_pruned(self, tenant_id: str, event_id: str) -> PrunedEvent | None:
        row = self._read(
            lambda c: c.execute(
                f"{_PRUNED} WHERE p.id = ? AND p.tenant_id = ?", (event_id, tenant_id)
            ).fetchone()
        )
        return None if row is None else _row_pruned(row)

    def scan_pruned(self, tenant_id: str, start: int, end: int) -> list[PrunedEvent]:
        rows = self._read(
            lambda c: c.execute(
                f"{_PRUNED} WHERE p.tenant_id = ? AND p.seq >= ? AND p.seq < ? ORDER BY p.seq",
                (tenant_id, start, end),
            ).fetchall()
        )
        return [_row_pruned(r) for r in rows]

    # -- events: the writer ----------------------------------------------------------------

    def append(self, tenant_id: str, events: Sequence[NewEvent]) -> Future[list[Appended]]:
        return self._submit(_AppendJob(tenant_id, events))

    def _submit(self, job: _AppendJob) -> Future[list[Appended]]:
        self._ensure_writer()
        self._queue.put(job)
        return job.future

    def _optimize(self) -> None:
        try:
            self._writer_conn.execute("PRAGMA optimize")
        except sqlite3.Error as exc:
            log.warning("PRAGMA optimize failed: %s", exc)

    def _write_loop(self) -> None:
        next_optimize = time.monotonic() + OPTIMIZE_SECONDS
        while True:
            jobs, stop = take_group(self._queue, self._group_limit)
            if jobs:
                self._commit_group(jobs)
                self._run_after_commit()
            if time.monotonic() > next_optimize:
                self._optimize()
                next_optimize = time.monotonic() + OPTIMIZE_SECONDS
            if stop:
                return

    def _group_limit(self) -> int:
        near = time.monotonic() + NEAR_DUE_SECONDS >= self.after_commit_due
        return NEAR_DUE_GROUP_EVENTS if near else MAX_GROUP_EVENTS

    def _commit_group(self, jobs: list[_AppendJob]) -> None:
        """Write every job in one transaction; a job that fails is rolled back alone."""
        conn = self._writer_conn
        results: list[tuple[_AppendJob, list[Appended] | BaseException]] = []
        # Heads are read inside the write transaction, never cached across transactions, so
        # several processes (uvicorn workers, admin tools) can share the file without forking
        # a tree: BEGIN IMMEDIATE holds SQLite's write lock until COMMIT.
        sequencer = GroupSequencer({}, self._leaf_function, self._check_append)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((job, self._write_job(conn, job, sequencer)))
                    conn.execute("RELEASE job")
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((job, _storage_error(exc)))
            for tenant_id, head in sequencer.changed_heads():
                conn.execute(
                    "UPDATE tree_heads SET size = ?, frontier = ?, pangea_frontier = ?"
                    " WHERE tenant_id = ?",
                    (head.size, head.pack(), head.pack_pangea(), tenant_id),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = UnavailableError(f"SQLite commit failed, nothing was written: {exc}")
            for job in jobs:
                job.future.set_exception(error)
            return
        for job, result in results:
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _write_job(
        self, conn: sqlite3.Connection, job: _AppendJob, sequencer: GroupSequencer
    ) -> list[Appended]:
        """One job in its savepoint: sequenced by ``sequencer``, accepted once written."""
        tenant_id = job.tenant_id
        if not sequencer.knows(tenant_id):
            row = conn.execute(
                "SELECT size, frontier, pangea_frontier FROM tree_heads WHERE tenant_id = ?",
                (tenant_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no tenant {tenant_id!r}")
            sequencer.add_head(tenant_id, TreeHead.unpack(row[0], row[1], row[2]))
        if job.before is not None:
            job.before(conn)
        keys = sequencer.lookup_keys(tenant_id, job.events)
        plan = sequencer.plan(tenant_id, job.events, _stored_keys(conn, tenant_id, keys))
        if plan.fresh:
            _write_plan(conn, job.events, plan)
        sequencer.accept(plan)
        return plan.results


def _stored_keys(
    conn: sqlite3.Connection, tenant_id: str, keys: list[str]
) -> dict[str, StoredEvent]:
    """The tenant's events already stored under ``keys``, by key."""
    found: dict[str, StoredEvent] = {}
    for at in range(0, len(keys), _KEYS_PER_LOOKUP):
        chunk = keys[at : at + _KEYS_PER_LOOKUP]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT idempotency_key, {_EVENT_FIELDS} FROM events"  # noqa: S608
            f" WHERE tenant_id = ? AND idempotency_key IN ({marks})",
            (tenant_id, *chunk),
        ):
            found[row[0]] = _row_event(row[1:])
    return found


def _write_plan(conn: sqlite3.Connection, events: Sequence[NewEvent], plan: Plan) -> None:
    """A job's new events, full-text rows, rollups and both trees' nodes."""
    tenant_id = plan.tenant_id
    rows = []
    texts = []
    # Row ids are assigned here (under the write lock) so the full-text rows can share them.
    first_row = conn.execute("SELECT coalesce(max(row_id), 0) + 1 FROM events").fetchone()[0]
    for offset, (i, seq) in enumerate(plan.fresh):
        event = events[i]
        rows.append((first_row + offset, *event_row(tenant_id, seq, event)))
        text = search_document(event.content)
        texts.append((first_row + offset, text.message, text.fields))
    insert_many(conn, "events", ("row_id", *EVENT_COLUMNS), rows)
    insert_many(conn, "events_fts", ("rowid", "message", "fields"), texts)
    add_rollups(conn, tenant_id, [{c: r[i + 1] for c, i in ROLLUP_AT.items()} for r in rows])
    for table, nodes in (("tree_nodes", plan.nodes), ("pangea_tree_nodes", plan.pangea_nodes)):
        if nodes:
            insert_many(conn, table, ("tenant_id", "level", "idx", "hash"), nodes)


def _redacted_event(event_id: str, content: dict[str, Any], salts: dict[str, bytes]) -> NewEvent:
    """A ``NewEvent`` carrying redacted content, only to reuse the row mapping."""
    # Redacted paths keep their place in the packed salts as zeros (see rows.pack_salts).
    aligned = {p: salts.get(p, bytes(SALT_SIZE)) for p in field_paths(content)}
    return NewEvent(event_id, "", content, orjson.dumps(content), aligned, {})


def _storage_error(exc: Exception) -> TrailkeepError:
    if isinstance(exc, TrailkeepError):
        return exc
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"write conflicts with stored data: {exc}")
    log.exception("append failed", exc_info=exc)
    return StorageError(f"SQLite write failed: {exc}")

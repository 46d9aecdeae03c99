"""The PostgreSQL writer: one thread per process commits every waiting append in one transaction.

Each group transaction first locks the tree heads of the tenants it appends to
(``SELECT ... FOR UPDATE``, in tenant order so that two processes never deadlock) and reads
them fresh: the head is never trusted across transactions, because another process sharing the
database may have appended since. Holding those row locks until ``COMMIT`` is what serializes a
tenant's sequencing across processes, so two processes can never fork a tree; the primary key
``(tenant_id, seq)`` would refuse a fork even if they tried.

The fast path sequences every job of the group in memory (``storage._sequencer``, shared with
the SQLite writer), then writes all their events and tree nodes with one ``COPY`` each. If any
job fails there, the transaction is rolled back and the group is redone with a ``SAVEPOINT`` per
job, so that a failing job fails alone, as in the SQLite backend. Futures are resolved only
after the server has answered ``COMMIT``.

Round trips are few on purpose (``BEGIN``, the locks and the idempotency lookups go in one
pipeline; the head updates and ``COMMIT`` in another): each wait on the socket hands the GIL to
the request threads, and getting it back can take a whole switch interval while they are busy,
all of it with the tenant locked against every other process.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from trailkeep.errors import StorageError, TrailkeepError, UnavailableError
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.query.fulltext import search_document
from trailkeep.storage._dialects import HOUR_TOTAL, PG_HOUR_DIMS
from trailkeep.storage._groups import settle, take_group
from trailkeep.storage._postgres_common import EVENT_FIELDS, log, pg_row, pg_text, translate
from trailkeep.storage._sequencer import GroupSequencer, NodeRows, Plan, wanted_keys
from trailkeep.storage.base import Appended
from trailkeep.storage.rows import EVENT_COLUMNS, event_row
from trailkeep.storage.tree import LeafFunction, TreeHead

__all__ = ["COPY_AT_LEAST", "MAX_GROUP_EVENTS", "AppendJob", "Connection", "GroupWriter"]

#: How many events one group commit may take before it commits and starts the next.
MAX_GROUP_EVENTS: Final = 5_000
#: Groups of fewer events are inserted in the same pipeline as the COMMIT (one round trip for
#: the whole group); larger ones go by COPY, which costs two round trips per table but far
#: less server work per row.
COPY_AT_LEAST: Final = 100
#: The writer keeps its connection between groups, but gives it back to the pool (which checks
#: it before lending it again) after this long idle or this long held.
_IDLE_RECHECK: Final = 1.0
_HOLD_AT_MOST: Final = 60.0

#: The events columns the writer fills: the shared row, then the full-text document.
_COLUMNS: Final = (*EVENT_COLUMNS, "search_message", "search_fields")
_NOT_TEXT: Final = {"seq": "int8", "body": "bytea", "salts": "bytea"}
_EVENT_TYPES: Final = [_NOT_TEXT.get(c, "text") for c in _COLUMNS]
_SEQ: Final = _COLUMNS.index("seq")
_TS: Final = _COLUMNS.index("ts")
#: Each ``hour_totals`` dimension with the position of the column holding its field.
_HOUR_AT: Final = tuple((dim, _COLUMNS.index("_".join(path))) for dim, path in PG_HOUR_DIMS.items())
_COPY_EVENTS: Final = f"COPY events ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_INSERT_EVENT: Final = "INSERT INTO events ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(_COLUMNS), ", ".join(["%s"] * len(_COLUMNS))
)
_INSERT_NODE: Final = "INSERT INTO {} (tenant_id, level, idx, hash) VALUES (%s, %s, %s, %s)"
_COPY_NODES: Final = "COPY {} (tenant_id, level, idx, hash) FROM STDIN (FORMAT BINARY)"
_NODE_TYPES: Final = ["text", "int2", "int8", "bytea"]
_LOCK_HEADS: Final = (
    "SELECT tenant_id, size, frontier, pangea_frontier FROM tree_heads"
    " WHERE tenant_id = ANY(%s) ORDER BY tenant_id FOR UPDATE"
)
_FIND_KEYS: Final = (
    f"SELECT idempotency_key, {EVENT_FIELDS} FROM events"  # noqa: S608 - fixed column names
    " WHERE tenant_id = %s AND idempotency_key = ANY(%s)"
)
_UPDATE_HEAD: Final = (
    "UPDATE tree_heads SET size = %s, frontier = %s, pangea_frontier = %s WHERE tenant_id = %s"
)
#: The group's events counted into ``hour_totals`` (migration 9), in key order.
_ADD_HOURS: Final = (
    "INSERT INTO hour_totals (tenant_id, dim, value, hour, n)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int8[])"
    " ON CONFLICT (tenant_id, dim, value, hour) DO UPDATE SET n = hour_totals.n + excluded.n"
)

Connection = psycopg.Connection[Any]
_Result = list[Appended] | TrailkeepError


@dataclass(slots=True)
class AppendJob:
    tenant_id: str
    events: Sequence[NewEvent]
    #: Runs first, in the job's transaction: a change that must commit with the events.
    before: Callable[[Connection], None] | None = None
    future: Future[list[Appended]] = field(default_factory=Future)
    #: Each event's row with ``seq`` and leaf still to fill in, made before locking anything.
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    """Rows waiting for ``COPY`` (or for the ``COMMIT``'s pipeline)."""

    events: list[Sequence[Any]] = field(default_factory=list)
    nodes: NodeRows = field(default_factory=list)
    #: Pangea's tree's rows (``pangea_tree_nodes``), appended with ``nodes``.
    pangea_nodes: NodeRows = field(default_factory=list)
    #: New events per ``hour_totals`` key (tenant, dimension, value, hour of ``ts``): added
    #: with the COMMIT (kept when the rows go by ``COPY``).
    hours: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def add(self, job: AppendJob, plan: Plan) -> None:
        """A job's sequenced rows: its templates with their ``seq``, both trees' nodes."""
        hours = self.hours
        for i, seq in plan.fresh:
            row = list(job.rows[i])
            row[_SEQ] = seq
            self.events.append(row)
            hour = row[_TS][:13]
            hours[job.tenant_id, HOUR_TOTAL, "", hour] += 1
            for dim, at in _HOUR_AT:
                if row[at] is not None:
                    hours[job.tenant_id, dim, row[at], hour] += 1
        self.nodes.extend(plan.nodes)
        self.pangea_nodes.extend(plan.pangea_nodes)


class _Isolate(Exception):
    """A job failed on the fast path: redo the group with a savepoint per job."""


class GroupWriter:
    """The queue and thread that turn appends into group-committed transactions.

    Args:
        pool: connections in autocommit mode (transactions are explicit), READ COMMITTED.
        leaf_function: computes each event's leaf hash once its ``seq`` is known, or None.
        timeout: seconds to wait for a connection before failing the group as unavailable.
        after_commit: called on the writer thread after each group (``Store.after_commit``).
        check_append: called with a tenant's locked head before a job's new events are
            sequenced after it; what it raises fails that job (``Store.append_guard``).
    """

    def __init__(
        self,
        pool: ConnectionPool[Connection],
        leaf_function: LeafFunction | None,
        timeout: float,
        after_commit: Callable[[], None],
        check_append: Callable[[str, TreeHead], None],
    ) -> None:
        self._pool = pool
        self._after_commit = after_commit
        self._check_append = check_append
        self._leaf_function = leaf_function
        self._timeout = timeout
        self._queue: queue.SimpleQueue[AppendJob | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._conn: Connection | None = None
        self._taken = self._used = 0.0

    def submit(self, job: AppendJob) -> Future[list[Appended]]:
        with self._lock:
            if self._closed:
                raise UnavailableError("the store is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="postgres-writer", daemon=True
                )
                self._thread.start()
            self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()

    # -- the loop and its connection -------------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                jobs, stop = take_group(self._queue, MAX_GROUP_EVENTS)
                if jobs:
                    self._commit(jobs)
                    self._after_commit()
                if stop:
                    return
        finally:
            self._release()

    def _connection(self) -> Connection:
        now = time.monotonic()
        if self._conn is not None and (
            self._conn.closed
            or now - self._used > _IDLE_RECHECK
            or now - self._taken > _HOLD_AT_MOST
        ):
            self._release()
        if self._conn is None:
            self._conn = self._pool.getconn(timeout=self._timeout)
            self._taken = now
        self._used = now
        return self._conn

    def _release(self) -> None:
        """Give the connection back; the pool discards it if broken and reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.putconn(conn)

    def _abandon(self, conn: Connection) -> None:
        """Roll back whatever the failed group left open, or drop a broken connection."""
        try:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            self._release()

    # -- one group -------------------------------------------------------------------------

    def _commit(self, jobs: list[AppendJob]) -> None:
        jobs = [job for job in jobs if self._prepare(job)]
        if not jobs:
            return
        try:
            try:
                results = self._transaction(jobs, isolate=False)
            except _Isolate as why:
                log.info("redoing a group of %d appends job by job: %s", len(jobs), why)
                results = self._transaction(jobs, isolate=True)
        except Exception as exc:
            if isinstance(exc, psycopg.OperationalError):
                self._release()
            error = translate(exc, "append")
            if isinstance(error, UnavailableError):
                error = UnavailableError(f"{error.message}; the append was not acknowledged")
            for job in jobs:
                settle(job.future, error)
            return
        for job, result in zip(jobs, results, strict=True):
            settle(job.future, result)

    def _prepare(self, job: AppendJob) -> bool:
        """Build the job's rows outside the locks; False (and the job failed) if that fails."""
        try:
            job.rows = [event_template(job.tenant_id, event) for event in job.events]
        except Exception as exc:
            settle(job.future, translate(exc, "append"))
            return False
        return True

    def _transaction(self, jobs: list[AppendJob], *, isolate: bool) -> list[_Result]:
        conn = self._connection()
        try:
            heads, known = _begin(conn, jobs, find_keys=not isolate)
            sequencer = GroupSequencer(heads, self._leaf_function, self._check_append, pg_text)
            late = _Pending()  # a small group's rows, sent with the COMMIT
            if isolate:
                results = [self._isolated(conn, job, sequencer, late) for job in jobs]
            else:
                results = self._together(conn, jobs, sequencer, known, late)
            try:
                _finish(conn, sequencer.changed_heads(), late)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                if isolate or not late.events:
                    raise
                raise _Isolate(repr(exc)) from exc
        except BaseException:
            self._abandon(conn)
            raise
        return results

    def _together(
        self,
        conn: Connection,
        jobs: list[AppendJob],
        sequencer: GroupSequencer,
        known: dict[str, dict[str, StoredEvent]],
        late: _Pending,
    ) -> list[_Result]:
        """The fast path: every job sequenced in memory, then one COPY per table (or, for a
        small group, the rows left in ``late`` to go with the COMMIT)."""
        pending = late
        results: list[_Result] = []
        for job in jobs:
            try:
                plan = _plan(conn, job, sequencer, known.get(job.tenant_id, {}))
                pending.add(job, plan)
                sequencer.accept(plan)
                results.append(plan.results)
            except psycopg.OperationalError:
                raise
            except TrailkeepError as exc:
                if job.before is not None:  # it may have written: only a savepoint undoes it
                    raise _Isolate(exc.message) from exc
                results.append(exc)  # nothing of it was written, nor its head moved
            except Exception as exc:
                raise _Isolate(repr(exc)) from exc
        if len(pending.events) < COPY_AT_LEAST:
            return results
        try:
            _copy(conn, pending)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise _Isolate(repr(exc)) from exc
        pending.events.clear()
        pending.nodes.clear()
        pending.pangea_nodes.clear()
        return results

    def _isolated(
        self, conn: Connection, job: AppendJob, sequencer: GroupSequencer, late: _Pending
    ) -> _Result:
        """The careful path: one job in its own savepoint, failing alone (its hours counted in
        ``late`` once the savepoint is released)."""
        try:
            with conn.transaction():
                pending = _Pending()
                keys = sequencer.lookup_keys(job.tenant_id, job.events)
                known = _found(conn, {job.tenant_id: keys} if keys else {})
                plan = _plan(conn, job, sequencer, known.get(job.tenant_id, {}))
                pending.add(job, plan)
                if len(pending.events) < COPY_AT_LEAST:
                    _insert(conn, pending)
                else:
                    _copy(conn, pending)
            sequencer.accept(plan)  # only once its savepoint is released
            late.hours.update(pending.hours)
            return plan.results
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            return translate(exc, "append")


def _plan(
    conn: Connection, job: AppendJob, sequencer: GroupSequencer, known: dict[str, StoredEvent]
) -> Plan:
    """Run the job's ``before`` (if its tenant exists), then sequence it (``GroupSequencer``)."""
    sequencer.head(job.tenant_id)  # no tenant: fail before writing anything
    if job.before is not None:
        job.before(conn)
    return sequencer.plan(job.tenant_id, job.events, known)


def event_template(tenant_id: str, event: NewEvent) -> tuple[Any, ...]:
    """An event's row (``_COLUMNS``) with ``seq`` and the leaf hash left to fill in."""
    text = search_document(event.content)
    return pg_row((*event_row(tenant_id, 0, event), text.message, text.fields), event.body)


def _wanted_keys(jobs: list[AppendJob]) -> dict[str, list[str]]:
    """Idempotency keys per tenant, as stored (see ``pg_text``)."""
    wanted: dict[str, set[str]] = {}
    for job in jobs:
        keys = wanted_keys(job.events, pg_text)
        if keys:
            wanted.setdefault(job.tenant_id, set()).update(keys)
    return {tenant_id: sorted(keys) for tenant_id, keys in wanted.items()}


def _found(conn: Connection, wanted: dict[str, list[str]]) -> dict[str, dict[str, StoredEvent]]:
    """Events already stored under the wanted keys, by tenant and key as stored."""
    found: dict[str, dict[str, StoredEvent]] = {}
    for tenant_id, keys in wanted.items():
        for row in conn.execute(_FIND_KEYS, (tenant_id, keys)).fetchall():
            found.setdefault(tenant_id, {})[row[0]] = StoredEvent.from_row(*row[1:])
    return found


def _begin(
    conn: Connection, jobs: list[AppendJob], *, find_keys: bool
) -> tuple[dict[str, TreeHead], dict[str, dict[str, StoredEvent]]]:
    """Open the transaction, lock and read the heads, look up keys: one round trip.

    The lookups run after the locks are granted (a pipeline runs in order), so in READ
    COMMITTED they see every event another process committed before it let the lock go.
    """
    tenants = sorted({job.tenant_id for job in jobs})
    wanted = _wanted_keys(jobs) if find_keys else {}
    with conn.pipeline():
        conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")  # whatever the server default
        locked = conn.execute(_LOCK_HEADS, (tenants,))
        finds = [(t, conn.execute(_FIND_KEYS, (t, keys))) for t, keys in wanted.items()]
    heads = {row[0]: TreeHead.unpack(row[1], row[2], row[3]) for row in locked.fetchall()}
    known: dict[str, dict[str, StoredEvent]] = {}
    for tenant_id, cur in finds:
        for row in cur:
            known.setdefault(tenant_id, {})[row[0]] = StoredEvent.from_row(*row[1:])
    return heads, known


def _finish(conn: Connection, heads: list[tuple[str, TreeHead]], late: _Pending) -> None:
    """Insert ``late`` rows, count the group's events in ``hour_totals``, store the moved
    ``heads`` and commit, all in one round trip.

    Raises unless the server committed.
    """
    changed = [(h.size, h.pack(), h.pack_pangea(), t) for t, h in heads]
    hours = sorted(late.hours.items())  # key order: two writers never wait on each other
    with conn.pipeline():
        _insert(conn, late)
        if hours:
            columns = [[k[i] for k, _ in hours] for i in range(4)]
            conn.execute(_ADD_HOURS, [*columns, [n for _, n in hours]])
        if changed:
            conn.cursor().executemany(_UPDATE_HEAD, changed)
        done = conn.execute("COMMIT")
    if done.statusmessage != "COMMIT":  # a failed transaction "commits" as ROLLBACK
        raise StorageError(f"PostgreSQL answered {done.statusmessage} to COMMIT")


def _insert(conn: Connection, pending: _Pending) -> None:
    """A few rows: one INSERT each, pipelined (inside a pipeline, or as ``executemany``)."""
    with conn.cursor() as cur:
        if pending.events:
            cur.executemany(_INSERT_EVENT, pending.events)
        for table, nodes in _node_tables(pending):
            if nodes:
                cur.executemany(_INSERT_NODE.format(table), nodes)


def _copy(conn: Connection, pending: _Pending) -> None:
    with conn.cursor() as cur:
        if pending.events:
            with cur.copy(_COPY_EVENTS) as copy:
                copy.set_types(_EVENT_TYPES)
                for row in pending.events:
                    copy.write_row(row)
        for table, nodes in _node_tables(pending):
            if nodes:
                with cur.copy(_COPY_NODES.format(table)) as copy:
                    copy.set_types(_NODE_TYPES)
                    for node in nodes:
                        copy.write_row(node)


def _node_tables(pending: _Pending) -> list[tuple[str, list[tuple[str, int, int, bytes]]]]:
    """Each tree's node table and the rows waiting for it."""
    return [("tree_nodes", pending.nodes), ("pangea_tree_nodes", pending.pangea_nodes)]

"""SQLite's writer: one thread commits every waiting append in one transaction (group commit),
driving the shared sequencer (``storage._sequencer``) with SQLite's own I/O; a failing job is
rolled back alone (a savepoint each). A mixin of ``SQLiteStore``.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from trailkeep.errors import (
    ConflictError,
    NotFoundError,
    StorageError,
    TrailkeepError,
    UnavailableError,
)
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.query.fulltext import search_document
from trailkeep.storage._groups import Linger, settle, take_group
from trailkeep.storage._sequencer import GroupSequencer, Plan
from trailkeep.storage._sqlite_prune import WalCheckpoints, prune_batch
from trailkeep.storage._sqlite_reads import _EVENT_FIELDS, _row_event
from trailkeep.storage._sqlite_sql import (
    ROLLUP_AT,
    add_rollups,
    insert_many,
)
from trailkeep.storage.base import (
    Appended,
    PruneBatch,
)
from trailkeep.storage.rows import EVENT_COLUMNS, event_row
from trailkeep.storage.tree import (
    LeafFunction,
    TreeHead,
)

__all__ = [
    "MAX_GROUP_EVENTS",
    "NEAR_DUE_GROUP_EVENTS",
    "NEAR_DUE_SECONDS",
    "OPTIMIZE_SECONDS",
    "SQLiteWriter",
]

log = logging.getLogger("trailkeep.storage.sqlite")
T = TypeVar("T")

#: How many events one group commit may take before it commits and starts the next.
MAX_GROUP_EVENTS = 2_000


#: ... and as ``after_commit`` comes due (within ``NEAR_DUE_SECONDS``), so that a checkpoint
#: is not signed a whole big group late.
NEAR_DUE_GROUP_EVENTS = 250


NEAR_DUE_SECONDS = 0.2


#: How long a busy writer waits for more writes before a small group (``_groups.Linger``),
#: and the events at which it stops waiting.
GROUP_LINGER_SECONDS = 0.0015
GROUP_LINGER_EVENTS = 64


#: How often the writer refreshes the planner's statistics where they went stale.
OPTIMIZE_SECONDS = 300.0


#: Idempotency keys looked up per query (well under SQLite's limit on bound parameters).
_KEYS_PER_LOOKUP = 500


@dataclass(slots=True)
class _AppendJob:
    tenant_id: str
    events: Sequence[NewEvent]
    #: Runs first, in the job's savepoint: a change that must commit with the events.
    before: Callable[[sqlite3.Connection], None] | None = None
    #: False for a job that acknowledges nothing (a prune batch): a group of only such jobs
    #: commits without an fsync; the next durable commit's fsync covers it (one WAL file).
    durable: bool = True
    future: Future[list[Appended]] = field(default_factory=Future)


class SQLiteWriter:
    """``Store.append`` and ``prune``: the writer thread's queue and group commit."""

    if TYPE_CHECKING:

        def _read(self, fn: Callable[[sqlite3.Connection], T], *, timed: bool = False) -> T: ...

        def _ensure_writer(self) -> None: ...

        _writer_conn: sqlite3.Connection

        _synchronous: str

        _wal_checkpoints: WalCheckpoints

        #: Jobs after the running one in its group (``_writes_waiting``).
        _jobs_behind: int

        _queue: queue.SimpleQueue[_AppendJob | None]

        _leaf_function: LeafFunction | None

        after_commit_due: float

        def _run_after_commit(self) -> None: ...

        def _check_append(self, tenant_id: str, head: TreeHead) -> None: ...

    def prune(self, tenant_id: str, cutoff: str, limit: int, pruned_at: str) -> PruneBatch:
        done: list[PruneBatch] = []
        started: list[float] = []

        def delete(conn: sqlite3.Connection) -> None:
            started.append(time.monotonic())
            done.append(
                prune_batch(conn, tenant_id, cutoff, limit, pruned_at, self._writes_waiting)
            )

        self._submit(_AppendJob(tenant_id, [], before=delete, durable=False)).result()
        self._wal_checkpoints.pruned(done[0].count)
        # What the batch held the writer and then the disk for (its WAL sync and checkpoint,
        # which an ingest's fsync meanwhile waits behind), not the writes it waited behind in
        # the queue (the run's rests are counted from it: ``RetentionService``).
        return replace(done[0], held=time.monotonic() - started[0])

    def _writes_waiting(self) -> bool:
        """Whether a write waits for the writer (a prune batch then ends early): in its queue,
        or behind the running job in the same group."""
        return self._jobs_behind > 0 or not self._queue.empty()

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
        linger = Linger(GROUP_LINGER_SECONDS, GROUP_LINGER_EVENTS)
        while True:
            jobs, stop = take_group(self._queue, self._group_limit, linger)
            if jobs:
                try:
                    self._commit_group(jobs)
                except Exception as exc:  # a bug: fail this group, never the writer thread
                    self._fail_group(jobs, exc)
                self._run_after_commit()
            if time.monotonic() > next_optimize:
                self._optimize()
                next_optimize = time.monotonic() + OPTIMIZE_SECONDS
            if stop:
                return

    def _fail_group(self, jobs: list[_AppendJob], exc: Exception) -> None:
        """Roll back what the group wrote and answer every job not yet answered with the
        failure (a job answered has committed), so the writes behind it are still taken."""
        log.exception("the SQLite writer failed on a group of %d writes", len(jobs))
        try:
            if self._writer_conn.in_transaction:
                self._writer_conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rolling the failed group back failed")
        error = UnavailableError(f"the write failed, nothing of it was stored: {exc}")
        for job in jobs:
            settle(job.future, error)

    def _group_limit(self) -> int:
        near = time.monotonic() + NEAR_DUE_SECONDS >= self.after_commit_due
        return NEAR_DUE_GROUP_EVENTS if near else MAX_GROUP_EVENTS

    def _commit_group(self, jobs: list[_AppendJob]) -> None:
        """Write every job in one transaction; a job that fails is rolled back alone.

        Appends are planned job by job and then written together, one statement per table
        for the whole group (``_commit_together``): 32 single events cost one INSERT each
        into the events, the full text, the rollups and both trees, not 32. Should a write
        fail, nothing of the group is kept and it is written again job by job, each in a
        savepoint (``_commit_per_job``), so only the job whose write fails fails. A job
        with a ``before`` step (a prune batch) is always written that way.

        A prune batch taken together with writes commits after them, in a transaction of its
        own: a write taken ahead of it would otherwise wait for the whole batch (it gives way
        only to writes behind it), and its fsync would not cover the batch's pages.
        """
        lazy = [job for job in jobs if not job.durable]
        if lazy and len(lazy) < len(jobs):
            self._commit_group([job for job in jobs if job.durable])
            self._commit_group(lazy)
            return
        if all(job.before is None for job in jobs) and self._commit_together(jobs):
            return
        self._commit_per_job(jobs)

    def _commit_together(self, jobs: list[_AppendJob]) -> bool:
        """The group in one pass: False (and nothing written or answered) if a write failed."""
        conn = self._writer_conn
        results: list[tuple[_AppendJob, list[Appended] | BaseException]] = []
        plans: list[tuple[Sequence[NewEvent], Plan]] = []
        sequencer = GroupSequencer({}, self._leaf_function, self._check_append)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                try:
                    plan = self._plan_job(conn, job, sequencer)
                except sqlite3.Error:
                    raise
                except Exception as exc:  # nothing of the job was written or accepted
                    results.append((job, _storage_error(exc)))
                    continue
                sequencer.accept(plan)
                if plan.fresh:
                    plans.append((job.events, plan))
                results.append((job, plan.results))
            _write_plans(conn, plans)
            self._store_heads(conn, sequencer)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.debug("group write failed, writing it job by job: %s", exc)
            return False
        _answer(results)
        return True

    def _commit_per_job(self, jobs: list[_AppendJob]) -> None:
        """Each job in its savepoint, so a job whose writes fail is rolled back alone."""
        conn = self._writer_conn
        results: list[tuple[_AppendJob, list[Appended] | BaseException]] = []
        # Heads are read inside the write transaction, never cached across transactions, so
        # several processes (uvicorn workers, admin tools) can share the file without forking
        # a tree: BEGIN IMMEDIATE holds SQLite's write lock until COMMIT.
        sequencer = GroupSequencer({}, self._leaf_function, self._check_append)
        lazy = not any(job.durable for job in jobs)
        try:
            if lazy:
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for at, job in enumerate(jobs):
                self._jobs_behind = len(jobs) - 1 - at
                conn.execute("SAVEPOINT job")
                try:
                    results.append((job, self._write_job(conn, job, sequencer)))
                    conn.execute("RELEASE job")
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((job, _storage_error(exc)))
            self._store_heads(conn, sequencer)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = UnavailableError(f"SQLite commit failed, nothing was written: {exc}")
            for job in jobs:
                settle(job.future, error)
            return
        finally:
            if lazy:
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
        _answer(results)

    @staticmethod
    def _store_heads(conn: sqlite3.Connection, sequencer: GroupSequencer) -> None:
        for tenant_id, head in sequencer.changed_heads():
            conn.execute(
                "UPDATE tree_heads SET size = ?, frontier = ?, pangea_frontier = ?"
                " WHERE tenant_id = ?",
                (head.size, head.pack(), head.pack_pangea(), tenant_id),
            )

    def _plan_job(
        self, conn: sqlite3.Connection, job: _AppendJob, sequencer: GroupSequencer
    ) -> Plan:
        """A job sequenced after its tenant's head as the group has left it (not accepted)."""
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
        return sequencer.plan(tenant_id, job.events, _stored_keys(conn, tenant_id, keys))

    def _write_job(
        self, conn: sqlite3.Connection, job: _AppendJob, sequencer: GroupSequencer
    ) -> list[Appended]:
        """One job in its savepoint: sequenced by ``sequencer``, accepted once written."""
        plan = self._plan_job(conn, job, sequencer)
        if plan.fresh:
            _write_plans(conn, [(job.events, plan)])
        sequencer.accept(plan)
        return plan.results


def _answer(results: list[tuple[_AppendJob, list[Appended] | BaseException]]) -> None:
    """Each job's answer, once its group committed."""
    for job, result in results:
        settle(job.future, result)


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


def _write_plans(
    conn: sqlite3.Connection, plans: Sequence[tuple[Sequence[NewEvent], Plan]]
) -> None:
    """Jobs' new events, full-text rows, rollups (summed per tenant over the jobs) and both
    trees' nodes, one statement shape per table whatever the number of jobs."""
    if not plans:
        return
    rows = []
    texts = []
    counted: dict[str, list[dict[str, str | None]]] = {}
    nodes: list[tuple[str, int, int, bytes]] = []
    pangea_nodes: list[tuple[str, int, int, bytes]] = []
    # Row ids are assigned here (under the write lock) so the full-text rows can share them.
    row_id = conn.execute("SELECT coalesce(max(row_id), 0) + 1 FROM events").fetchone()[0]
    for events, plan in plans:
        tenant_id = plan.tenant_id
        tenant_rows = counted.setdefault(tenant_id, [])
        for i, seq in plan.fresh:
            event = events[i]
            row = (row_id, *event_row(tenant_id, seq, event))
            rows.append(row)
            tenant_rows.append({c: row[at + 1] for c, at in ROLLUP_AT.items()})
            text = search_document(event.content)
            texts.append((row_id, text.message, text.fields))
            row_id += 1
        nodes.extend(plan.nodes)
        pangea_nodes.extend(plan.pangea_nodes)
    insert_many(conn, "events", ("row_id", *EVENT_COLUMNS), rows)
    insert_many(conn, "events_fts", ("rowid", "message", "fields"), texts)
    add_rollups(conn, counted)
    for table, table_nodes in (("tree_nodes", nodes), ("pangea_tree_nodes", pangea_nodes)):
        if table_nodes:
            insert_many(conn, table, ("tenant_id", "level", "idx", "hash"), table_nodes)


def _storage_error(exc: Exception) -> TrailkeepError:
    if isinstance(exc, TrailkeepError):
        return exc
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"write conflicts with stored data: {exc}")
    log.exception("append failed", exc_info=exc)
    return StorageError(f"SQLite write failed: {exc}")

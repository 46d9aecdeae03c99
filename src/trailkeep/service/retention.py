"""Retention: prune a tenant's expired events in small transactions, and record each run.

A tenant's ``retention_days`` (tenant settings; none keeps events forever) applies to each
event's own ``timestamp``, so imported history obeys it too. A ``legal_hold`` suspends all
pruning of the tenant, by the background task and by an admin alike. Pruning deletes content
(the event's row, salts, filter columns, full-text row and rollup counts) and keeps its id,
seq and leaf, so every proof still verifies (DESIGN section 10). Each run that pruned anything
is itself an audit event, ``retention.prune``, in the tenant's log.

Batches are small and paced: after one that a write waited for, the run rests long enough that
it holds the writer (which runs each batch as one transaction, and which every ingest waits
for) at most ``duty`` of the time, so ingest and queries keep their usual latency while a big
prune runs; after one that no write waited for (the store says so: ``PruneBatch.uncontended``,
SQLite's), by ``idle_duty`` instead: the duty by default, since queries in the same process
slow down while the writer prunes flat out (SQLite's server default is lower still:
``SQLITE_IDLE_DUTY``); 1 lets a writer with nothing else to do prune at its pace
(``benchmarks/prune.py`` measures both).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from trailkeep.errors import ConflictError, NotFoundError, TrailkeepError
from trailkeep.model.tenant import Principal, Tenant
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.service.admin_trail import Actor, record_admin_event
from trailkeep.storage.base import PruneBatch, Store

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_DUTY",
    "DEFAULT_PAUSE",
    "PRUNE_ACTION",
    "SQLITE_BATCH",
    "SQLITE_DUTY",
    "SQLITE_IDLE_DUTY",
    "PruneRun",
    "RetentionService",
    "RetentionTask",
    "legal_hold",
    "retention_days",
]

log = logging.getLogger(__name__)

PRUNE_ACTION: Final = "retention.prune"
#: The actor of the background task's runs (an admin's run names the admin's key).
_TASK: Final = Actor("retention-task", "server")
#: Events per prune transaction: small, so an ingest that waits behind one waits little.
DEFAULT_BATCH: Final = 200
#: Least seconds between two batches: the writer's queue drains in between.
DEFAULT_PAUSE: Final = 0.005
#: Most of the time a run may keep the writer busy (benchmarks/prune.py: at 0.1, ingest and
#: list latency while a million events are pruned stay near idle).
DEFAULT_DUTY: Final = 0.1
#: SQLite's most events per batch. A write that comes while a batch runs waits for one step
#: and the batch's rollups, tombstones and commit, which grow with it, and its next fsync
#: flushes the batch's WAL pages (16-19 per event). On a quiet machine a sparse ingest's p95
#: was 5-8x idle with batches of 50, 2.3x with 10 and 1.35x with 5; lists with no ingest
#: 1.16x with 50 and 1.31x with 10 (0.6 ms) (docs/operations.md#retention).
SQLITE_BATCH: Final = 10
#: Under a steady ingest nearly every SQLite batch is waited for, so this sets the pace there:
#: at 0.1 ingest p95 was 1.08-1.21x idle, at 0.15 1.17x, at 0.25 ingest p50 1.18-1.29x.
SQLITE_DUTY: Final = 0.1
#: SQLite's duty after a batch no write waited for, unless the duty is set (then the duty's).
#: Such a batch takes the writer and then the disk (its WAL sync and checkpoint count in its
#: held time) while a sparse ingest may arrive at any moment: about this share of them meets
#: one and waits for its tail, commit or I/O. On a quiet machine, sparse ingest p95 was
#: 1.36-1.40x idle at 0.1 and 1.15x at 0.05 (50 events/s), lists with no ingest 1.12x at 0.1
#: (docs/operations.md#retention).
SQLITE_IDLE_DUTY: Final = 0.05


def retention_days(tenant: Tenant) -> int | None:
    """The tenant's retention in days, or None to keep its events forever."""
    days = tenant.settings.get("retention_days")
    if type(days) is not int or days < 1:
        return None
    return days


def legal_hold(tenant: Tenant) -> bool:
    """Whether a legal hold suspends pruning of the tenant."""
    return tenant.settings.get("legal_hold") is True


@dataclass(frozen=True, slots=True)
class PruneRun:
    """What one prune run of a tenant did."""

    tenant_id: str
    count: int
    first_seq: int | None
    last_seq: int | None
    cutoff: str
    retention_days: int
    #: False when the run stopped at its ``limit`` with expired events left.
    done: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "pruned": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "cutoff": self.cutoff,
            "retention_days": self.retention_days,
            "done": self.done,
        }


class RetentionService:
    """Prunes tenants by their retention policy.

    Args:
        store: the store to prune.
        batch_size: events per transaction.
        pause: least seconds between two transactions of a run.
        duty: most of the time (0 < duty <= 1) a run spends in its transactions; after a
            batch that held the writer ``t`` seconds (``PruneBatch.held``; else the call's time)
            it rests ``t * (1 - duty) / duty`` (1: no rest beyond ``pause``).
        idle_duty: the same after a batch that the store says no write waited for
            (``PruneBatch.uncontended``: SQLite's); by default ``duty``; 1 takes idle writer
            time freely (queries in the same process slow down meanwhile).
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = DEFAULT_BATCH,
        pause: float = DEFAULT_PAUSE,
        duty: float = DEFAULT_DUTY,
        idle_duty: float | None = None,
    ) -> None:
        if idle_duty is None:
            idle_duty = duty
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        for name, value in (("duty", duty), ("idle_duty", idle_duty)):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], not {value}")
        self._store = store
        self.batch_size = batch_size
        self.pause = pause
        self.duty = duty
        self.idle_duty = idle_duty
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make running prunes end after their current batch (each batch is whole)."""
        self._stopping.set()

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self._store.get_tenant(tenant_id)
        if tenant is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return tenant

    def _policy(self, tenant: Tenant) -> int:
        if legal_hold(tenant):
            raise ConflictError(
                f"tenant {tenant.id!r} is under legal hold: nothing is pruned until it is lifted"
            )
        days = retention_days(tenant)
        if days is None:
            raise ConflictError(
                f"tenant {tenant.id!r} has no retention policy (retention_days): its events are"
                " kept forever"
            )
        return days

    def prune_tenant(
        self,
        tenant_id: str,
        *,
        actor: Actor | Principal = _TASK,
        now: datetime | None = None,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> PruneRun:
        """Prune the tenant's events older than its retention, batch by batch.

        Args:
            tenant_id: the tenant.
            actor: who asked (the admin key's principal; the background task by default),
                recorded as the run's actor.
            now: the time retention counts back from (default: the clock).
            limit: most events this run prunes (None: all expired ones).
            progress: called with the running count after each batch.

        Raises:
            NotFoundError: no such tenant.
            ConflictError: the tenant is under legal hold, or has no retention policy.
        """
        tenant = self._tenant(tenant_id)
        days = self._policy(tenant)
        cutoff = format_time((now or utcnow()) - timedelta(days=days))
        count, first, last, done = 0, None, None, False
        while not self._stopping.is_set():
            ask = self.batch_size if limit is None else min(self.batch_size, limit - count)
            if ask <= 0:
                break
            started = time.monotonic()
            batch = self._store.prune(tenant_id, cutoff, ask, format_time(utcnow()))
            busy = time.monotonic() - started if batch.held is None else batch.held
            if batch.count:
                assert batch.first_seq is not None
                assert batch.last_seq is not None
                count += batch.count
                first = batch.first_seq if first is None else min(first, batch.first_seq)
                last = batch.last_seq if last is None else max(last, batch.last_seq)
                if progress is not None:
                    progress(count)
            if batch.count < ask and not batch.more:
                done = True
                break
            self._stopping.wait(self._rest(batch, busy))
            if legal_hold(self._tenant(tenant_id)):
                break  # a hold set meanwhile stops the run; what went is still recorded
        run = PruneRun(tenant_id, count, first, last, cutoff, days, done)
        if count:
            _record(self._store, run, actor)
        return run

    def _rest(self, batch: PruneBatch, busy: float) -> float:
        """Seconds to rest after a batch that kept the writer ``busy`` seconds: by
        ``idle_duty`` when the store says no write waited for the writer meanwhile (the batch
        took idle writer time; at 1, only ``pause``), else long enough that the run holds the
        writer at most ``duty`` of the time while writes compete for it."""
        duty = self.idle_duty if batch.uncontended else self.duty
        return max(self.pause, busy * (1 - duty) / duty)

    def prune_all(self, *, now: datetime | None = None) -> list[PruneRun]:
        """One pass of the background task: every tenant with a retention policy and no
        legal hold. A tenant that fails is logged and skipped; the others still run."""
        runs = []
        for tenant in self._store.list_tenants():
            if retention_days(tenant) is None or legal_hold(tenant):
                continue
            if self._stopping.is_set():
                break
            try:
                runs.append(self.prune_tenant(tenant.id, now=now))
            except TrailkeepError as exc:
                log.error("pruning tenant %s failed, will retry: %s", tenant.id, exc.message)
        return runs


def _record(store: Store, run: PruneRun, actor: Actor | Principal) -> None:
    record_admin_event(
        store,
        run.tenant_id,
        PRUNE_ACTION,
        actor,
        {"id": run.tenant_id, "type": "tenant"},
        {
            "count": run.count,
            "first_seq": run.first_seq,
            "last_seq": run.last_seq,
            "cutoff": run.cutoff,
            "policy": {"retention_days": run.retention_days},
        },
        message=f"pruned {run.count} events with a timestamp before {run.cutoff}"
        f" (retention_days {run.retention_days})",
    )


class RetentionTask:
    """Runs ``RetentionService.prune_all`` every ``interval`` seconds on its own thread.

    The first pass runs one interval after ``start`` (not at once), so a server that restarts
    in a loop does not prune in a loop.
    """

    def __init__(self, service: RetentionService, interval: float) -> None:
        self._service = service
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        #: Completed passes (tests and metrics read it).
        self.passes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._service.stop()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            started = time.monotonic()
            try:
                runs = self._service.prune_all()
            except TrailkeepError as exc:
                log.error("the retention pass failed, will retry: %s", exc.message)
            except Exception:
                log.exception("the retention pass failed, will retry")
            else:
                pruned = sum(r.count for r in runs)
                if pruned:
                    log.info(
                        "retention pruned %d events of %d tenants in %.1f s",
                        pruned,
                        sum(1 for r in runs if r.count),
                        time.monotonic() - started,
                    )
            self.passes += 1

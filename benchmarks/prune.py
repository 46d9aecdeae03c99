"""Retention at scale: prune a million expired events, and what ingest and lists feel meanwhile.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/prune.py --quick                 # 100k expired events, SQLite
    .venv/bin/python benchmarks/prune.py                         # 1M expired events, SQLite
    .venv/bin/python benchmarks/prune.py --database postgresql://USER@HOST/DB --events 200000

Steps, in this process, through the server's own services (``Services.build``; the HTTP layer
adds the same few hundred microseconds to each request whether a prune runs or not, so it is
left out to keep the comparison sharp):

1. seed tenant ``acme`` with ``--events`` events timestamped two years ago (so a retention of
   365 days expires every one of them) in appends of 5,000, plus ``--live`` recent ones;
2. start ``RetentionService.prune_tenant`` (batch size, pause and duty as ``--batch`` /
   ``--pause`` / ``--duty``, the server's defaults for the backend) on a thread of its own,
   and two probe threads: one ingests one event per append into ``acme`` (none with
   ``--no-ingest``: the prune's pace when nothing else writes), one lists its newest 50 events
   (``GET /v1/events?limit=50``'s call), each back to back with a 5 ms think time
   (``--think``);
3. **alternate** ``--window``-second windows, ``--windows`` pairs of them: an **idle** window
   (the prune held between two batches: the store's ``prune`` waits, and the window's clock
   starts once the batch in flight has committed) and a **pruning** window (the prune runs at
   its pace). Each probe sample counts for the window it started and ended in; samples that
   straddle a switch are dropped. The idle and pruning percentiles are pooled over all
   windows, so a load that drifts during the run (other work on the machine) weighs on both
   sides alike; the prune's events/s counts pruning windows only. Then the prune stops.

With ``--seeded DIR`` (a copy of a ``benchmarks/_seed`` database, e.g. the 1M-event tenant
``benchmarks/bundle.py`` uses) step 1 is skipped and the seeded tenant's realistic events are
pruned instead (the copy is consumed). The run ends early, reporting what it measured, when
every expired event is pruned.

The exit status is non-zero only when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

# This checkout's code, not whichever trailkeep the interpreter has installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from trailkeep.api.services import Services
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.retention import (
    DEFAULT_BATCH,
    DEFAULT_DUTY,
    DEFAULT_PAUSE,
    SQLITE_BATCH,
    SQLITE_DUTY,
    SQLITE_IDLE_DUTY,
    PruneRun,
    RetentionService,
)
from trailkeep.settings import Settings
from trailkeep.storage.base import PruneBatch, Store

TENANT = "acme"
THINK = 0.005
TARGET = 1.20


def _event(i: int, when: str) -> dict[str, object]:
    return {
        "timestamp": when,
        "action": ("user.login", "document.update", "invoke", "tool.call")[i % 4],
        "category": "users",
        "outcome": "success" if i % 10 else "failure",
        "actor": {"id": f"user-{i % 2000}", "email": f"user{i % 2000}@example.com"},
        "target": {"id": f"doc-{i % 50000}", "type": "document"},
        "message": f"benchmark event {i} for retention",
        "metadata": {"region": "eu-west-1", "bytes": i % 4096},
    }


def seed(services: Services, events: int, live: int) -> None:
    services.tenants.create_tenant(TENANT)
    old = utcnow() - timedelta(days=730)
    started = time.perf_counter()
    for first in range(0, events, 5000):
        batch = [
            prepare_event(_event(i, format_time(old + timedelta(seconds=i))), Limits())
            for i in range(first, min(first + 5000, events))
        ]
        services.store.append(TENANT, batch).result()
    recent = [prepare_event(_event(i, format_time(utcnow())), Limits()) for i in range(live)]
    services.store.append(TENANT, recent).result()
    seconds = time.perf_counter() - started
    print(f"seed: {events:,} expired + {live:,} recent events in {seconds:.0f} s")


class Gate:
    """The store as the prune sees it, with a gate between two batches: the benchmark closes
    it for an idle window. ``RetentionService`` looks the tenant up (for a legal hold) after
    each rest and before the next batch, outside the time it counts as busy, so the gate
    waits there: an idle window does not stretch the run's next rest. Once past the gate, one
    batch follows; ``close`` returns when it has committed. Counts what the batches pruned."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._passed = False
        self.pruned = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_tenant(self, tenant_id: str) -> Any:
        self._open.wait()
        with self._lock:
            self._passed = True
        return self._store.get_tenant(tenant_id)

    def prune(self, tenant_id: str, cutoff: str, limit: int, pruned_at: str) -> PruneBatch:
        try:
            batch: PruneBatch = self._store.prune(tenant_id, cutoff, limit, pruned_at)
        finally:
            with self._lock:
                self._passed = False
                self._settled.notify_all()
        self.pruned += batch.count
        return batch

    def open(self) -> None:
        self._open.set()

    def close(self, pruning: threading.Thread) -> None:
        """Hold the prune; return once a batch that passed the gate has committed (or the
        prune has ended without one)."""
        self._open.clear()
        with self._lock:
            while self._passed and pruning.is_alive():
                self._settled.wait(0.1)


class Probe:
    """Two threads timing an ingest and a list, back to back, until stopped; each sample is
    kept under the window it started and ended in (``window``), or dropped."""

    def __init__(self, services: Services, *, ingest: bool = True, think: float = THINK) -> None:
        self._services = services
        self._think = think
        self._stop = threading.Event()
        #: The current window: ("idle" | "pruning", number), or None while switching.
        self.window: tuple[str, int] | None = None
        self.ingest: dict[str, list[float]] = {"idle": [], "pruning": []}
        self.lists: dict[str, list[float]] = {"idle": [], "pruning": []}
        self._threads = [threading.Thread(target=self._loop, args=(self._list_one, self.lists))]
        if ingest:
            self._threads.append(
                threading.Thread(target=self._loop, args=(self._ingest_one, self.ingest))
            )

    def _ingest_one(self) -> None:
        event = prepare_event(_event(0, format_time(utcnow())), Limits())
        self._services.store.append(TENANT, [event]).result()

    def _list_one(self) -> None:
        self._services.store.list_events(TENANT, EventQuery(sort=Sort.DESC, limit=50))

    def _loop(self, fn: Callable[[], None], into: dict[str, list[float]]) -> None:
        while not self._stop.is_set():
            window = self.window
            t0 = time.perf_counter()
            fn()
            seconds = time.perf_counter() - t0
            if window is not None and self.window == window:
                into[window[0]].append(seconds)
            time.sleep(self._think)

    def __enter__(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _line(name: str, values: list[float]) -> str:
    return (
        f"{name:<22} n={len(values):>6}  p50 {_pct(values, 0.50):7.2f} ms"
        f"  p95 {_pct(values, 0.95):7.2f} ms  p99 {_pct(values, 0.99):7.2f} ms"
        f"  mean {statistics.fmean(values) * 1000:7.2f} ms"
    )


def _verdict(name: str, idle: list[float], busy: list[float]) -> None:
    for q, label in ((0.50, "p50"), (0.95, "p95")):
        ratio = _pct(busy, q) / max(_pct(idle, q), 1e-9)
        state = "MET" if ratio <= TARGET else "MISSED"
        print(f"  {name} {label} while pruning / idle = {ratio:.2f} (target <= {TARGET}) {state}")


def alternate(
    probe: Probe, gate: Gate, pruning: threading.Thread, window: float, windows: int
) -> tuple[float, int, float]:
    """Idle and pruning windows in turn until ``windows`` pairs ran or the prune ended: the
    pruning windows' seconds, the events pruned in them, and this process's CPU in them."""
    seconds, pruned, cpu = 0.0, 0, 0.0
    for number in range(windows):
        probe.window = None
        gate.close(pruning)
        probe.window = ("idle", number)
        time.sleep(window)
        probe.window = None
        before, t0, cpu0 = gate.pruned, time.perf_counter(), time.process_time()
        gate.open()
        probe.window = ("pruning", number)
        pruning.join(window)
        probe.window = None
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - cpu0
        pruned += gate.pruned - before
        print(
            f"  window {number + 1}/{windows}: {gate.pruned - before:,} pruned,"
            f" load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        if not pruning.is_alive():
            break
    return seconds, pruned, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="100,000 expired events")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window")
    parser.add_argument(
        "--windows", type=int, default=12, help="pairs of an idle and a pruning window"
    )
    parser.add_argument("--batch", type=int, help="default: the server's for the backend")
    parser.add_argument("--pause", type=float, default=DEFAULT_PAUSE)
    parser.add_argument("--duty", type=float, help="default: the server's for the backend")
    parser.add_argument(
        "--idle-duty",
        type=float,
        default=None,
        help="the duty after a batch no write waited for (default: the server's: on SQLite"
        " 0.05 unless --duty is given, else --duty)",
    )
    parser.add_argument(
        "--no-ingest",
        action="store_true",
        help="no ingest probe: the prune's pace when nothing else writes (lists still probed)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=THINK,
        help="seconds each probe rests between two calls (default 0.005: a steady ingest;"
        " 0.1: a sparse one, which meets an uncontended prune batch instead of a short one)",
    )
    parser.add_argument("--database", help="a postgresql:// URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--seeded",
        type=Path,
        help="instead of seeding: a COPY of a benchmarks/_seed database directory (its"
        " manifest.json, trailkeep.db and signing.key), whose tenant acme is pruned whole"
        " (retention counted back from 365 days after its last event); the copy is consumed",
    )
    args = parser.parse_args()
    events = 100_000 if args.quick else args.events
    if args.batch is None:
        args.batch = DEFAULT_BATCH if args.database else SQLITE_BATCH
    if args.idle_duty is None and args.duty is None and not args.database:
        args.idle_duty = SQLITE_IDLE_DUTY
    if args.duty is None:
        args.duty = DEFAULT_DUTY if args.database else SQLITE_DUTY
    if args.idle_duty is None:
        args.idle_duty = args.duty
    now = None
    with tempfile.TemporaryDirectory(prefix="trailkeep-prune-") as tmp:
        if args.seeded is not None:
            manifest = json.loads((args.seeded / "manifest.json").read_text())
            last = datetime.fromisoformat(manifest["span"][1])
            now = last + timedelta(days=365, seconds=1)
            database = f"sqlite:///{args.seeded / 'trailkeep.db'}"
            signing_key = args.seeded / "signing.key"
        else:
            database = args.database or f"sqlite:///{Path(tmp) / 'trailkeep.db'}"
            signing_key = Path(tmp) / "signing.key"
        settings = Settings(database=database, signing_key=signing_key, prune_interval=0)
        services = Services.build(settings)
        try:
            if args.seeded is None:
                seed(services, events, args.live)
            else:
                print(f"seeded: {services.store.tree_head(TENANT).size:,} events in {database}")
            services.tenants.update_settings(TENANT, {"retention_days": 365})
            gate = Gate(services.store)
            retention = RetentionService(
                cast(Store, gate),
                batch_size=args.batch,
                pause=args.pause,
                duty=args.duty,
                idle_duty=args.idle_duty,
            )
            runs: list[PruneRun] = []
            pruning = threading.Thread(
                target=lambda: runs.append(retention.prune_tenant(TENANT, now=now)),
                name="prune",
            )
            started = time.perf_counter()
            with Probe(services, ingest=not args.no_ingest, think=args.think) as probe:
                pruning.start()
                seconds, pruned, cpu = alternate(probe, gate, pruning, args.window, args.windows)
                retention.stop()
                gate.open()
                pruning.join()
            wall = time.perf_counter() - started
        finally:
            services.close()
    backend = "postgres" if args.database else "sqlite"
    done = bool(runs and runs[0].done)
    print(
        f"prune ({backend}, batch {args.batch}, pause {args.pause * 1000:g} ms, duty"
        f" {args.duty:g}, idle duty {args.idle_duty:g}): {pruned:,} events in {seconds:.1f} s"
        " of pruning windows ="
        f" {pruned / max(seconds, 1e-9):,.0f} events/s"
        f" ({'all expired pruned' if done else 'expired events left'}; this process's CPU in"
        f" the pruning windows {cpu:.0f} s; {wall:.0f} s in all, load now"
        f" {os.getloadavg()[0]:.1f})"
    )
    if not args.no_ingest:
        print(_line("ingest, idle", probe.ingest["idle"]))
        print(_line("ingest, while pruning", probe.ingest["pruning"]))
    print(_line("list, idle", probe.lists["idle"]))
    print(_line("list, while pruning", probe.lists["pruning"]))
    if not args.no_ingest:
        _verdict("ingest", probe.ingest["idle"], probe.ingest["pruning"])
    _verdict("list", probe.lists["idle"], probe.lists["pruning"])


if __name__ == "__main__":
    main()

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
2. **idle**: for ``--seconds``, one thread ingests one event per append into ``acme`` and one
   lists its newest 50 events (``GET /v1/events?limit=50``'s call), back to back with a 5 ms
   think time: latency percentiles of each;
3. **pruning**: the same two threads while ``RetentionService.prune_tenant`` (batch size and
   pause as ``--batch`` / ``--pause``, the server's defaults) prunes every expired event: the
   prune's events/s, and each latency percentile against idle (the issue's target: within 20 %).

With ``--seeded DIR`` (a copy of a ``benchmarks/_seed`` database, e.g. the 1M-event tenant
``benchmarks/bundle.py`` uses) step 1 is skipped and the seeded tenant's realistic events are
pruned instead; ``--max-seconds`` stops a long run and reports the rate so far.

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
    RetentionService,
)
from trailkeep.settings import Settings

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


class Probe:
    """Two threads timing an ingest and a list, back to back, until stopped."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._stop = threading.Event()
        self.ingest: list[float] = []
        self.lists: list[float] = []
        self._threads = [
            threading.Thread(target=self._loop, args=(self._ingest_one, self.ingest)),
            threading.Thread(target=self._loop, args=(self._list_one, self.lists)),
        ]

    def _ingest_one(self) -> None:
        event = prepare_event(_event(0, format_time(utcnow())), Limits())
        self._services.store.append(TENANT, [event]).result()

    def _list_one(self) -> None:
        self._services.store.list_events(TENANT, EventQuery(sort=Sort.DESC, limit=50))

    def _loop(self, fn: Callable[[], None], into: list[float]) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            fn()
            into.append(time.perf_counter() - t0)
            time.sleep(THINK)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="100,000 expired events")
    parser.add_argument("--seconds", type=float, default=20.0, help="idle measurement time")
    parser.add_argument("--batch", type=int, help="default: the server's for the backend")
    parser.add_argument("--pause", type=float, default=DEFAULT_PAUSE)
    parser.add_argument("--duty", type=float, help="default: the server's for the backend")
    parser.add_argument("--database", help="a postgresql:// URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--seeded",
        type=Path,
        help="instead of seeding: a COPY of a benchmarks/_seed database directory (its"
        " manifest.json, trailkeep.db and signing.key), whose tenant acme is pruned whole"
        " (retention counted back from 365 days after its last event); the copy is consumed",
    )
    parser.add_argument(
        "--max-seconds", type=float, help="stop the prune after this long and report its rate"
    )
    args = parser.parse_args()
    events = 100_000 if args.quick else args.events
    if args.batch is None:
        args.batch = DEFAULT_BATCH if args.database else SQLITE_BATCH
    if args.duty is None:
        args.duty = DEFAULT_DUTY if args.database else SQLITE_DUTY
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
            with Probe(services) as idle:
                time.sleep(args.seconds)
            retention = RetentionService(
                services.store, batch_size=args.batch, pause=args.pause, duty=args.duty
            )
            timer = None
            if args.max_seconds:
                timer = threading.Timer(args.max_seconds, retention.stop)
                timer.start()
            with Probe(services) as busy:
                t0, cpu0 = time.perf_counter(), time.process_time()
                run = retention.prune_tenant(TENANT, now=now)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            if timer is not None:
                timer.cancel()
        finally:
            services.close()
    backend = "postgres" if args.database else "sqlite"
    print(
        f"prune ({backend}, batch {args.batch}, pause {args.pause * 1000:g} ms, duty"
        f" {args.duty:g}): {run.count:,}"
        f" events in {seconds:.1f} s = {run.count / seconds:,.0f} events/s"
        f" ({'all expired' if run.done else 'stopped at --max-seconds'}; this process's CPU"
        f" meanwhile {cpu:.0f} s, load {os.getloadavg()[0]:.1f})"
    )
    print(_line("ingest, idle", idle.ingest))
    print(_line("ingest, while pruning", busy.ingest))
    print(_line("list, idle", idle.lists))
    print(_line("list, while pruning", busy.lists))
    _verdict("ingest", idle.ingest, busy.ingest)
    _verdict("list", idle.lists, busy.lists)


if __name__ == "__main__":
    main()

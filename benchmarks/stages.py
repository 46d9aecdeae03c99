"""Where a batched event's server CPU goes: each ingest stage timed in-process, no HTTP.

    .venv/bin/python benchmarks/stages.py [--events 100000] [--cprofile prepare|append] [--indexes]

The HTTP benchmark (``ingest.py``) says how fast the whole server is; this says which stage to
make faster. It runs the same code the batch route runs, stage by stage, on the same
synthetic events, and prints microseconds per event for each:

* ``parse``: the route's way (``api/ingest_body.event_contents``: one msgspec pass into typed
  structs, then builtins), against the way before it, which is still the referee for bodies
  msgspec refuses (stdlib ``json.loads``, pydantic ``validate_python``, ``event_content``);
* ``prepare``: normalization, salts, commitments, ids (the service), batch by batch as
  ``EventService.ingest`` does it (ids first, one salt pool per batch); and normalization
  alone (``normalize_event``), so the difference is what the commitments cost. (The server
  has no switch to ingest without them: one event written so breaks its tenant's tree.)
* ``append``: the writer thread, durable (``synchronous=FULL``), alone and while another
  thread keeps the GIL busy the way the event loop does under load;
* ``respond``: ``to_wire`` and ``orjson.dumps`` of the stored events, and the
  ``Prefer: return=minimal`` answer (id, seq, hash, received_at);
* ``sqlite rows``: the bare INSERTs of the same rows through one ``executemany`` per batch
  versus one multi-row ``INSERT ... VALUES (...), (...)`` per batch, alone and under GIL
  contention. CPython's ``sqlite3`` releases and retakes the GIL around every
  ``sqlite3_step``, i.e. once per row with ``executemany``; each retake can wait up to
  ``sys.getswitchinterval()`` (5 ms) while another thread runs Python;
* ``--indexes``: each index on ``events``, by the bare INSERTs' CPU with every index minus
  without that one (alternating rounds, medians): what an index costs the writer, to weigh
  against the query plans that use it.

Private names of the server are used where the stage has no public entry point; this file
may need a touch when those move.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workload import TIMESTAMP_MODES, TS_SLOT, batch_bodies, stamp, utc_now
from trailkeep.api.body import validate_body
from trailkeep.api.ingest_body import event_content, event_contents
from trailkeep.api.routes.events import _ref
from trailkeep.api.schemas import BatchIn
from trailkeep.model.ids import new_event_ids
from trailkeep.service.events import EventService, Limits, SaltPool, normalize_event
from trailkeep.service.prepare_pool import PreparePool
from trailkeep.service.stores import open_store
from trailkeep.service.tenants import TenantService
from trailkeep.storage.rows import EVENT_COLUMNS, event_row

BATCH = 500


def _report(name: str, seconds: float, events: int) -> None:
    us = seconds / events * 1e6
    print(f"  {name:58s} {us:8.1f} µs/event  ({events / seconds:>10,.0f} events/s on one core)")


@contextmanager
def gil_pressure(work: Callable[[], object]) -> Iterator[None]:
    """Run ``work`` in a loop on another thread, as the event loop does under load."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            work()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def prepare_batch(service: EventService, batch: list[dict[str, Any]]) -> list[Any]:
    """Prepare a batch as ``EventService.ingest`` does: ids first, one salt pool."""
    ids = new_event_ids(len(batch))
    pool = SaltPool(len(batch))
    return [service.prepare(c, index=i, salt_pool=pool, event_id=ids[i])
            for i, c in enumerate(batch)]  # fmt: skip


def _timed(fn: Callable[[], object], profile: bool) -> float:
    """CPU seconds of this process (all its threads) spent in ``fn``: on a shared machine the
    wall clock measures the neighbours too."""
    profiler = cProfile.Profile() if profile else None
    t0 = time.process_time()
    if profiler:
        profiler.runcall(fn)
    else:
        fn()
    seconds = time.process_time() - t0
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
    return seconds


def _pooled(contents: list[list[dict[str, Any]]]) -> float:
    """CPU of this process while a ``PreparePool`` worker prepares every batch (sending the
    contents, unpacking the events): what ``TRAILKEEP_PREPARE_WORKERS`` leaves to the server."""
    pool = PreparePool(1, Limits(), min_events=1)
    try:
        asyncio.run(pool.prepare(contents[0][:1], batch=True))  # start the worker first

        async def run() -> None:
            for batch in contents:
                await pool.prepare(batch, batch=True)

        return _timed(lambda: asyncio.run(run()), False)
    finally:
        pool.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--cprofile", choices=("parse", "prepare", "append", "respond"))
    p.add_argument(
        "--indexes",
        action="store_true",
        help="also each events index's cost: the bare INSERTs without it, against with all",
    )
    p.add_argument(
        "--timestamps",
        choices=TIMESTAMP_MODES,
        default="now",
        help="as in ingest.py; 'now' stamps each batch when it is built",
    )
    args = p.parse_args()
    batches = max(1, args.events // BATCH)
    n = batches * BATCH
    bodies = [b.replace(TS_SLOT, stamp())
              for b in batch_bodies(100, 8, BATCH, utc_now(), args.timestamps)]  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="trailkeep-stages-"))
    store = open_store(f"sqlite:///{tmp / 'a.db'}")
    TenantService(store).create_tenant("acme")
    service = EventService(store, Limits())
    print(
        f"{n:,} events in {batches} batches of {BATCH}, timestamps {args.timestamps},"
        f" synchronous=FULL, {tmp}"
    )

    contents: list[list[dict[str, Any]]] = []

    def parse_route() -> None:
        for i in range(batches):
            contents.append(event_contents(bodies[i % len(bodies)], batch=True))

    def parse_pydantic() -> None:
        for i in range(batches):
            [event_content(e) for e in validate_body(bodies[i % len(bodies)], BatchIn).events]

    print("stages (µs of this process's CPU per event):")
    _report("parse: msgspec one pass (the route)", _timed(
        parse_route, args.cprofile == "parse"), n)  # fmt: skip
    _report("parse before: json.loads + validate_python + event_content",
            _timed(parse_pydantic, False), n)  # fmt: skip

    prepared: list[list[Any]] = []

    def prepare() -> None:
        for batch in contents:
            prepared.append(prepare_batch(service, batch))

    def normalize() -> None:
        limits = Limits()
        for batch in contents:
            [normalize_event(c, limits, index=i) for i, c in enumerate(batch)]

    seconds = _timed(prepare, args.cprofile == "prepare")
    _report("prepare (salts, commitments, ids, time)", seconds, n)
    _report("prepare in a worker process: this process's share", _pooled(contents), n)
    plain = _timed(normalize, False)
    _report("prepare without commitments (normalize_event only)", plain, n)
    _report("  the commitments' share (difference)", max(seconds - plain, 0.0), n)

    appended: list[Any] = []
    half = len(prepared) // 2

    def append(part: list[list[Any]]) -> Callable[[], None]:
        def run() -> None:
            for events in part:
                appended.append(store.append("acme", events).result())

        return run

    _report("append, writer alone (leaf, tree, rows, INSERT, COMMIT)",
            _timed(append(prepared[:half]), args.cprofile == "append"), half * BATCH)  # fmt: skip
    spare = contents[0]
    third = half + (len(prepared) - half) // 2
    with gil_pressure(lambda: prepare_batch(service, spare[:20])):
        _report("append, while another thread runs prepare() as ingest does",
                _timed(append(prepared[half:third]), False), (third - half) * BATCH)  # fmt: skip
    # One getrandom() per id and per event's salts, each releasing the GIL: the writer, waiting
    # to retake it after a SQLite step, is woken for nothing each time and starves.
    with gil_pressure(lambda: [service.prepare(c) for c in spare[:20]]):
        _report("append, ... prepare() one event at a time (getrandom each)",
                _timed(append(prepared[third:]), False),
                (len(prepared) - third) * BATCH)  # fmt: skip

    def respond() -> None:
        for result in appended:
            orjson.dumps({"events": [a.event.to_wire() for a in result]})

    def respond_minimal() -> None:
        for result in appended:
            orjson.dumps({"events": [_ref(a) for a in result]})

    _report("respond: to_wire + orjson.dumps", _timed(respond, args.cprofile == "respond"), n)
    _report("respond minimal (Prefer: return=minimal)", _timed(respond_minimal, False), n)
    store.close()
    _sqlite_rows(tmp, prepared, spare, service)
    if args.indexes:
        _index_costs(tmp, prepared)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _sqlite_rows(tmp: Path, prepared: list[list[Any]], spare: list[Any], service: Any) -> None:
    """Bare INSERTs of the same rows: executemany vs one multi-row statement per batch."""
    import sqlite3

    print("sqlite rows (same schema, indexes and pragmas, FULL, one COMMIT per batch):")
    columns = ", ".join(EVENT_COLUMNS)
    one = "(" + ", ".join("?" * len(EVENT_COLUMNS)) + ")"
    many = f"INSERT INTO events ({columns}) VALUES " + ", ".join([one] * BATCH)
    single = f"INSERT INTO events ({columns}) VALUES {one}"
    seq = 0

    def rows(events: list[Any]) -> list[tuple[Any, ...]]:
        nonlocal seq
        out = [event_row("acme", seq + i, e) for i, e in enumerate(events)]
        seq += len(events)
        return out

    for label, pressure in (("alone", False), ("under GIL pressure", True)):
        for mode in ("executemany", "multi-row VALUES"):
            db = tmp / f"rows-{mode[:5]}-{pressure}.db"
            open_store(f"sqlite:///{db}").close()  # the real schema, by migration
            conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "cache_size=-65536"):
                conn.execute(f"PRAGMA {pragma}")
            data = [rows(events) for events in prepared]

            def run(conn: sqlite3.Connection = conn, data: list[Any] = data,
                    mode: str = mode) -> None:  # fmt: skip
                for batch in data:
                    conn.execute("BEGIN IMMEDIATE")
                    if mode == "executemany":
                        conn.executemany(single, batch)
                    else:
                        conn.execute(many, [v for row in batch for v in row])
                    conn.execute("COMMIT")

            if pressure:
                with gil_pressure(lambda: prepare_batch(service, spare[:20])):
                    seconds = _timed(run, False)
            else:
                seconds = _timed(run, False)
            _report(f"{mode}, {label}", seconds, sum(len(b) for b in data))
            conn.close()


def _index_costs(tmp: Path, prepared: list[list[Any]], rounds: int = 3) -> None:
    """Each index on ``events``: the bare INSERTs' CPU with every index, minus without it.

    Each database is a fresh copy of the migrated schema; rounds alternate (all indexes, then
    each one dropped) and the median of each is kept, so a neighbour's load shifts both sides.
    """
    import sqlite3
    import statistics

    base = tmp / "indexes-base.db"
    open_store(f"sqlite:///{base}").close()
    with sqlite3.connect(base) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            " AND sql IS NOT NULL ORDER BY name")]  # fmt: skip
    columns = ", ".join(EVENT_COLUMNS)
    single = f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
    data = []
    seq = 0
    for events in prepared:
        data.append([event_row("acme", seq + i, e) for i, e in enumerate(events)])
        seq += len(events)
    total = sum(len(b) for b in data)

    def run(drop: list[str]) -> float:
        db = tmp / "indexes-run.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy(base, db)
        conn = sqlite3.connect(db, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "cache_size=-65536"):
            conn.execute(f"PRAGMA {pragma}")
        for name in drop:
            conn.execute(f"DROP INDEX {name}")
        t0 = time.process_time()
        for batch in data:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(single, batch)
            conn.execute("COMMIT")
        seconds = time.process_time() - t0
        conn.close()
        return seconds / total * 1e6

    every: list[float] = []
    without: dict[str, list[float]] = {name: [] for name in names}
    bare: list[float] = []
    for _ in range(rounds):
        every.append(run([]))
        bare.append(run(names))
        for name in names:
            without[name].append(run([name]))
    full = statistics.median(every)
    print(f"events indexes ({total:,} rows, median of {rounds} alternating rounds, µs CPU/row):")
    print(f"  every index {full:6.1f}; no index {statistics.median(bare):6.1f}")
    for name in names:
        print(f"  {name:34s} {full - statistics.median(without[name]):6.1f} µs/row")


if __name__ == "__main__":
    sys.exit(main())

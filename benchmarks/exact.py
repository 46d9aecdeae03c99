"""Exact totals and deep offsets at a million events: ``Store.count`` and ``Store.select``.

Run with the project's virtualenv (and ``PYTHONPATH=src`` from a worktree)::

    .venv/bin/python benchmarks/exact.py                 # the cached 1M-event seed (_seed)
    .venv/bin/python benchmarks/exact.py --database sqlite:////path/to/trailkeep.db --tenant acme
    .venv/bin/python benchmarks/exact.py --database postgresql://... --tenant acme --seed 1000000

``--seed N`` first appends N seed events (``_seed.make_event``, 30 days ending now) to the
tenant through the store when it does not exist yet: how a PostgreSQL database is filled.

For each typical selection (everything, one action, an outcome, an actor, a 7-day range, a
``metadata`` value): the exact count and the page at offset 500,000 (or the middle of the
matches when fewer), newest first, ``--rounds`` times each, p50/p95; then each answer checked
against a second formulation (count = length of an id walk; the offset page = the ids at that
position of a full ordered id list) so a fast wrong answer cannot pass.

Targets: exact totals p95 <= 250 ms, offset 500,000 p95 <= 100 ms. Prints MET or MISSED.

``--heavy`` also times the exact count of ``isolation.heavy_query()`` (64 OR'ed ``metadata.*``
search terms that match nothing, so every event of the range is read) over the last 7 days:
no target, the figure shows what a scan of JSON conditions costs per event.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOTAL_P95_MS = 250.0
OFFSET_P95_MS = 100.0


def _selections() -> list[tuple[str, Any]]:
    from trailkeep.query.ast import Values
    from trailkeep.query.filters import EventQuery, filter_node

    week = "2026-11-30T00:00:00.000000Z"
    return [
        ("everything", EventQuery()),
        ("action=login", EventQuery(filter_node({"action": ["login"]}))),
        ("outcome=failure", EventQuery(filter_node({"outcome": ["failure"]}))),
        ("actor.id=user-3", EventQuery(filter_node({"actor.id": ["user-3"]}))),
        ("last 7 days", EventQuery(start=week)),
        ("metadata.model=gpt-4o", EventQuery(Values(("metadata", "model"), ("gpt-4o",)))),
    ]


def _time(fn: Callable[[], Any], rounds: int) -> tuple[list[float], Any]:
    out: list[float] = []
    result = None
    for _ in range(rounds):
        began = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - began) * 1000)
    return out, result


def _p(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _check(store: Any, tenant: str, query: Any, total: int, offset: int, page: list[Any]) -> str:
    """The count and the page, by a second route: every matching id, in order, once."""
    import dataclasses

    ids: list[str] = []
    after = None
    while True:
        chunk = store.select(tenant, dataclasses.replace(query, limit=1000, after=after))
        ids.extend(e.id for e in chunk)
        if len(chunk) < 1000:
            break
        after = (chunk[-1].content["timestamp"], chunk[-1].id)
    ok_total = len(ids) == total
    ok_page = ids[offset : offset + len(page)] == [e.id for e in page]
    return "exact" if ok_total and ok_page else f"WRONG (walk: {len(ids)}, page {ok_page})"


def _heavy(store: Any, args: argparse.Namespace) -> None:
    from isolation import heavy_query
    from trailkeep.query.filters import EventQuery
    from trailkeep.query.parser import parse

    query = EventQuery(parse(heavy_query()), start="2026-11-30T00:00:00.000000Z")
    span = store.count(args.tenant, EventQuery(start=query.start))
    rounds = max(1, min(args.rounds, 3))
    times, total = _time(lambda: store.count(args.tenant, query), rounds)
    print(
        f"64 OR'ed metadata terms, last 7 days ({span:,} events): total={total}"
        f"  count p50={_p(times, 50):,.0f} ms ({1000 * _p(times, 50) / max(span, 1):.1f} µs/event)"
    )


def _seed_store(store: Any, tenant: str, count: int) -> None:
    """``count`` seed events appended to a new ``tenant`` through the store, 2,000 at a time."""
    import itertools
    import random
    from datetime import UTC, datetime, timedelta

    from _seed import _timeline, make_event
    from trailkeep.model.tenant import Tenant
    from trailkeep.service.events import Limits, prepare_event

    if store.get_tenant(tenant) is not None:
        return
    store.create_tenant(Tenant(tenant, "2026-01-01T00:00:00.000000Z"))
    rng, last = random.Random(tenant), datetime.now(UTC)
    times = _timeline(rng, count, last - timedelta(days=30), timedelta(days=30))
    began = time.monotonic()
    for done in range(0, count, 2_000):
        chunk = itertools.islice(times, 2_000)
        store.append(
            tenant, [prepare_event(make_event(rng, ts), Limits()) for ts in chunk]
        ).result()
        if done % 100_000 == 0:
            print(f"  seeded {done:,} events in {time.monotonic() - began:.0f} s", flush=True)
    print(f"seeded {count:,} events in {time.monotonic() - began:.0f} s")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from trailkeep.service.stores import open_store

    store = open_store(args.database, sqlite_synchronous="NORMAL")
    verdicts = []
    try:
        if args.seed:
            _seed_store(store, args.tenant, args.seed)
        for name, query in _selections():
            totals_ms, total = _time(lambda q=query: store.count(args.tenant, q), args.rounds)
            offset = min(args.offset, max(total // 2, 0))
            paged = dataclasses.replace(query, offset=offset, limit=50)
            offsets_ms, page = _time(lambda q=paged: store.select(args.tenant, q), args.rounds)
            check = _check(store, args.tenant, query, total, offset, page) if args.check else "-"
            t95, o95 = _p(totals_ms, 95), _p(offsets_ms, 95)
            verdicts.append(t95 <= TOTAL_P95_MS and o95 <= OFFSET_P95_MS)
            print(
                f"{name:24} total={total:>9,}  count p50={_p(totals_ms, 50):6.1f} p95={t95:6.1f} ms"
                f"  offset {offset:>7,}: p50={_p(offsets_ms, 50):6.1f} p95={o95:6.1f} ms  {check}"
            )
        if args.heavy:
            _heavy(store, args)
    finally:
        store.close()
    met = "MET" if all(verdicts) else "MISSED"
    print(f"targets (totals p95 <= {TOTAL_P95_MS:.0f} ms, offset p95 <= {OFFSET_P95_MS:.0f} ms)"
          f" for every selection: {met}")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="")
    parser.add_argument("--tenant", default="")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--offset", type=int, default=500_000)
    parser.add_argument("--no-check", dest="check", action="store_false")
    parser.add_argument("--heavy", action="store_true", help="also time a 64-term OR search")
    parser.add_argument("--seed", type=int, default=0, help="seed a new tenant with N events")
    args = parser.parse_args()
    if not args.database:
        from _seed import MAIN_TENANT, SeedSpec, seeded

        seed = seeded(SeedSpec(main=1_000_000, others=9, per_other=100_000))
        args.database, args.tenant = seed.database, args.tenant or MAIN_TENANT
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

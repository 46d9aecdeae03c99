"""Search, facets and deep paging of a real server at scale, and what full text costs ingest.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/search.py --quick     # 100k-event tenant (+9 of 10k)
    .venv/bin/python benchmarks/search.py             # 1M-event tenant (+9 of 100k), cached

Steps:

1. the machine floor (``shared/bench/floor.py``);
2. a real server on the cached seeded database (``_seed``: realistic actions, outcomes, Zipf
   actors and message vocabulary, errors as phrases, ``metadata.model``/``tokens_used``, 30
   days of timestamps; one big tenant and 9 others sharing the tables and the FTS index);
3. ``GET /v1/events?q=`` shapes (two field terms, a full-text word at several selectivities,
   a phrase with a time range) and ``GET /v1/facets`` (no filter, a time range, a filter):
   sequential requests, ``--rounds`` rounds, p50/p95/p99; ``GET /healthz`` in the same rounds
   is the HTTP floor;
4. cursor walks (limit 50, newest first; plain, ``outcome=success``, ``action=document.read``)
   following ``next_cursor`` to page ``--pages``; then page 1 and the deepest page's cursor
   re-requested alternately, p50/p95 each;
5. the same queries in-process: the SQL each statement ran (captured with a trace callback),
   its time and its ``EXPLAIN QUERY PLAN``, and how many events match;
6. ingest with and without the full-text index, in-process (``SQLiteStore.append``, the
   writer alone, durable ``FULL``, 4 jobs in flight as 4 clients would): as shipped; without
   the covering facet indexes (dropped from the fresh database); with the ``events_fts``
   INSERT skipped (``search_document`` still computed); and the foundation (neither), by
   patching two module globals of ``trailkeep.storage.sqlite`` in this process.

Targets print as MET or MISSED; the exit status is non-zero only when the benchmark could
not run.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from _main import run_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _floor import find_floor, run_floor
from _queries import percentiles
from _seed import MAIN_TENANT, Seeded, SeedSpec, code_state, make_event, seeded, word_at_rank
from _server import Server
from ingest import Row

SQLITE_FLOOR = "sqlite insert"


@dataclass(frozen=True, slots=True)
class Shape:
    """One kind of request; ``params`` rotate across requests."""

    group: str
    name: str
    path: str
    params: list[dict[str, str]]
    target_ms: float | None = None
    #: Filled by the benchmark: per-round percentiles and every latency.
    rounds: list[dict[str, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _iso(t: Any) -> str:
    return str(t.strftime("%Y-%m-%dT%H:%M:%SZ"))


def shapes_for(seed: Seeded) -> list[Shape]:
    """The measured requests, with values chosen for their selectivity in the seeded data."""
    first, last = seed.span
    week = _iso(last - timedelta(days=7))
    mid_a, mid_b = _iso(first + timedelta(days=12)), _iso(first + timedelta(days=15))
    common, mid, rare = word_at_rank(0), word_at_rank(20), word_at_rank(1000)
    users = [f"user-{k}" for k in (17, 3, 250, 1200, 60, 999)]
    return [
        Shape("floor", "GET /healthz (HTTP floor)", "/healthz", [{}]),
        Shape(
            "fields",
            "q: actor.id:user-N outcome:failure",
            "/v1/events",
            [{"q": f"actor.id:{u} outcome:failure"} for u in users],
            50,
        ),
        Shape(
            "fields",
            "q: action:login outcome:failure",
            "/v1/events",
            [{"q": "action:login outcome:failure"}],
            50,
        ),
        Shape(
            "fields",
            "q: category:agents outcome:failure",
            "/v1/events",
            [{"q": f"category:{c} outcome:failure"} for c in ("agents", "tools", "users")],
            50,
        ),
        Shape(
            "fields",
            "q: metadata.model:gpt-4o metadata.tokens_used>5000",
            "/v1/events",
            [{"q": "metadata.model:gpt-4o metadata.tokens_used>5000"}],
            50,
        ),
        Shape("word", f"q: common word ({common!r}, ~20%)", "/v1/events", [{"q": common}], 100),
        Shape("word", f"q: mid word ({mid!r}, ~1%)", "/v1/events", [{"q": mid}], 100),
        Shape("word", f"q: rare word ({rare!r}, ~0.03%)", "/v1/events", [{"q": rare}], 100),
        Shape("word", "q: error word ('denied', ~1.4%)", "/v1/events", [{"q": "denied"}], 100),
        Shape(
            "phrase",
            '"permission denied" + last 7 days',
            "/v1/events",
            [{"q": f'"permission denied" timestamp>={week}'}],
            100,
        ),
        Shape(
            "phrase",
            '"connection reset" + 3 days mid-span',
            "/v1/events",
            [{"q": f'"connection reset" timestamp>={mid_a} timestamp<{mid_b}'}],
            100,
        ),
        Shape(
            "phrase",
            '"quarterly report" + last 7 days',
            "/v1/events",
            [{"q": f'"quarterly report" timestamp>={week}'}],
            100,
        ),
        Shape("facets", "facets: no filter", "/v1/facets", [{}], 200),
        Shape("facets", "facets: last 7 days", "/v1/facets", [{"start": week}], 200),
        Shape("facets", "facets: action=login", "/v1/facets", [{"action": "login"}], 200),
        Shape("facets", "facets: q=outcome:failure", "/v1/facets", [{"q": "outcome:failure"}], 200),
    ]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="trailkeep-search-", dir=args.tmp))
        self.rows: list[Row] = []
        self.floor: dict[str, float] = {}
        self.server: Server | None = None
        self.http_floor = float("nan")

    def cleanup(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def step_floor(self) -> None:
        path = find_floor(self.args.floor)
        if path is None or not path.exists():
            print("floor: not found; ratios are n/a")
            return
        print(f"floor: running {path}")
        self.floor, text = run_floor(path)
        print("\n".join(f"  {line}" for line in text.strip().splitlines()))

    def floor_vs_http(self, seconds: float) -> str:
        return f"p50 {seconds / self.http_floor:.0f}x /healthz" if self.http_floor else "n/a"

    # -- queries -----------------------------------------------------------------------------

    def step_queries(self, client: httpx.Client, shapes: list[Shape]) -> None:
        a = self.args
        print(
            f"\nqueries: {a.rounds} rounds x up to {a.requests} sequential requests per shape"
            f" (at most {a.shape_seconds:.0f} s per shape and round), after 3 warm-ups"
        )
        for shape in shapes:
            for params in shape.params[:3]:
                _get(client, shape.path, params)
        for r in range(a.rounds):
            for shape in shapes:
                lat = _timed(client, shape, a.requests, a.shape_seconds)
                p = percentiles(lat)
                shape.rounds.append(p)
                shape.latencies.extend(lat)
                print(
                    f"  round {r} {shape.name:52s} p50 {_ms(p['p50']):>7}  p95 {_ms(p['p95']):>7}"
                    f"  p99 {_ms(p['p99']):>7} ms  (n={len(lat)})"
                )
        self.http_floor = percentiles(shapes[0].latencies)["p50"]
        for shape in shapes[1:]:
            p95s = [p["p95"] for p in shape.rounds]
            med = statistics.median(p95s)
            p = percentiles(shape.latencies)
            assert shape.target_ms is not None
            self.rows.append(
                Row(
                    f"{shape.name} p95 (min/med)",
                    f"{_ms(min(p95s))} / {_ms(med)} ms (p50 {_ms(p['p50'])}, p99 {_ms(p['p99'])})",
                    f"<= {shape.target_ms:.0f} ms",
                    "MET" if med * 1e3 <= shape.target_ms else "MISSED",
                    self.floor_vs_http(p["p50"]),
                )
            )

    # -- cursor walks ------------------------------------------------------------------------

    def step_walks(self, client: httpx.Client) -> None:
        a = self.args
        walks = [
            ("plain", {}),
            ("outcome=success", {"outcome": "success"}),
            ("action=document.read", {"action": "document.read"}),
        ]
        print(
            f"\ncursor walks: limit 50, newest first, following next_cursor to page {a.pages:,};"
            f" then page 1 and the last page re-requested alternately x{a.page_repeats}"
        )
        for name, params in walks:
            base = {"limit": "50", **params}
            per_page: list[float] = []
            cursor: str | None = None
            deepest: str | None = None
            t0 = time.monotonic()
            for _ in range(a.pages):
                deepest = cursor  # the cursor of the page being read (None for page 1)
                query = {**base, "cursor": cursor} if cursor else base
                start = time.perf_counter()
                body = _get(client, "/v1/events", query)
                per_page.append(time.perf_counter() - start)
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            pages = len(per_page)
            first_pages = statistics.median(per_page[1:101])
            last_pages = statistics.median(per_page[-100:])
            print(
                f"  {name}: walked {pages:,} pages in {time.monotonic() - t0:.1f} s; median of"
                f" pages 2-101 {_ms(first_pages)} ms, of the last 100 {_ms(last_pages)} ms"
            )
            again: dict[str, list[float]] = {"first": [], "last": []}
            last_query = {**base, "cursor": deepest} if deepest else base
            for _ in range(a.page_repeats):
                for which, query in (("first", base), ("last", last_query)):
                    start = time.perf_counter()
                    _get(client, "/v1/events", query)
                    again[which].append(time.perf_counter() - start)
            p1, pn = percentiles(again["first"]), percentiles(again["last"])
            ratio = pn["p50"] / p1["p50"]
            print(
                f"    page 1 p50 {_ms(p1['p50'])} p95 {_ms(p1['p95'])} ms; page {pages:,}"
                f" p50 {_ms(pn['p50'])} p95 {_ms(pn['p95'])} ms; ratio {ratio:.2f}"
            )
            self.rows.append(
                Row(
                    f"cursor page {pages:,} vs 1, {name}",
                    f"{_ms(pn['p50'])} vs {_ms(p1['p50'])} ms p50 = {ratio:.2f}x"
                    f" (p95 {_ms(pn['p95'])} vs {_ms(p1['p95'])})",
                    "<= 2x",
                    "MET" if ratio <= 2.0 else "MISSED",
                    self.floor_vs_http(pn["p50"]),
                )
            )

    # -- in-process: SQL, plans, match counts ------------------------------------------------

    def step_explain(self, seed: Seeded, shapes: list[Shape]) -> None:
        from trailkeep.service.events import EventService, Limits
        from trailkeep.storage.sqlite import SQLiteStore

        print("\nthe same requests in-process (no HTTP): each SQL statement, its time and plan")
        store = SQLiteStore(str(seed.db_path), leaf_function=None)
        service = EventService(store, Limits())
        try:
            conn = store._reader()
            for shape in shapes[1:]:
                if not self.args.explain_all and not _slow(shape):
                    continue
                params = shape.params[0]
                statements: list[str] = []
                conn.set_trace_callback(statements.append)
                t0 = time.perf_counter()
                _service_call(service, shape.path, params)
                total = time.perf_counter() - t0
                conn.set_trace_callback(None)
                selects = [
                    s
                    for s in statements
                    if s.lstrip().upper().startswith("SELECT")
                    and " events" in s
                    and "tree_heads" not in s
                ]
                print(
                    f"  {shape.name}: {total * 1e3:.1f} ms in-process, {len(selects)} statement(s)"
                )
                for sql in selects:
                    t0 = time.perf_counter()
                    conn.execute(sql).fetchall()
                    ms = (time.perf_counter() - t0) * 1e3
                    print(f"    {ms:8.1f} ms  {sql}")
                    for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall():
                        print(f"               plan: {row[3]}")
                if shape.path == "/v1/events":
                    print(f"    matches: {_count(conn, service, params):,} events of {MAIN_TENANT}")
        finally:
            store.close()

    # -- ingest with and without full text ---------------------------------------------------

    def step_fts_ingest(self) -> None:
        import trailkeep.storage._sqlite_writer as sqlite_module
        from trailkeep.model.tenant import Tenant
        from trailkeep.query.fulltext import SearchDocument
        from trailkeep.service.events import Limits, prepare_event
        from trailkeep.service.stores import open_store

        a = self.args
        rng = random.Random(11)
        total = a.fts_prefill + a.fts_events
        print(
            f"\ningest with/without full text: in-process SQLiteStore.append, fresh database per"
            f" run, {a.fts_prefill:,} events prefilled then {a.fts_events:,} timed, chunks of"
            f" 500, 4 in flight, synchronous=FULL; {a.fts_repeats} alternated repeats"
        )
        t0 = time.perf_counter()
        events = [
            prepare_event(
                make_event(rng, f"2026-11-{1 + i * 20 // total:02d}T00:00:00.{i % 10**6:06d}Z"),
                Limits(),
            )
            for i in range(total)
        ]
        print(f"  prepared {total:,} events in {time.perf_counter() - t0:.1f} s (not timed)")
        t0 = time.perf_counter()
        for e in events[: a.fts_events]:
            sqlite_module.search_document(e.content)
        doc_us = (time.perf_counter() - t0) / a.fts_events * 1e6
        real_doc, real_insert = sqlite_module.search_document, sqlite_module.insert_many
        empty = SearchDocument("", "")

        def no_fts_insert(conn: Any, table: str, *args: Any, **kwargs: Any) -> None:
            if table != "events_fts":
                real_insert(conn, table, *args, **kwargs)

        # name -> (search_document, insert_many, keep the covering facet indexes)
        variants: dict[str, tuple[Callable[..., Any], Callable[..., Any], bool]] = {
            "full text (as shipped)": (real_doc, real_insert, True),
            "no facet indexes": (real_doc, real_insert, False),
            "FTS INSERT skipped": (real_doc, no_fts_insert, True),
            "foundation (no full text)": (lambda content: empty, no_fts_insert, True),
        }
        rates: dict[str, list[float]] = {k: [] for k in variants}
        try:
            for rep in range(a.fts_repeats):
                order = list(variants) if rep % 2 == 0 else list(reversed(variants))
                for name in order:
                    doc, insert, facet_indexes = variants[name]
                    sqlite_module.search_document, sqlite_module.insert_many = doc, insert
                    db = self.root / f"fts-{rep}-{len(rates[name])}-{abs(hash(name))}.db"
                    store = open_store(f"sqlite:///{db}")
                    try:
                        if not facet_indexes:
                            _drop_facet_indexes(db)
                        store.create_tenant(Tenant(MAIN_TENANT, "2026-11-01T00:00:00.000000Z", {}))
                        _append_all(store, events[: a.fts_prefill])
                        t0 = time.perf_counter()
                        _append_all(store, events[a.fts_prefill :])
                        rate = a.fts_events / (time.perf_counter() - t0)
                    finally:
                        store.close()
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{db}{suffix}").unlink(missing_ok=True)
                    rates[name].append(rate)
                    print(f"  run {rep} {name:28s} {rate:>9,.0f} events/s")
        finally:
            sqlite_module.search_document, sqlite_module.insert_many = real_doc, real_insert
        med = {k: statistics.median(v) for k, v in rates.items()}
        us = {k: 1e6 / v for k, v in med.items()}
        shipped, bare, no_fts_insert_us, foundation = (
            us["full text (as shipped)"],
            us["no facet indexes"],
            us["FTS INSERT skipped"],
            us["foundation (no full text)"],
        )
        print(
            f"  writer µs/event (medians): shipped {shipped:.1f}, without facet indexes"
            f" {bare:.1f}, FTS insert skipped {no_fts_insert_us:.1f}, foundation"
            f" {foundation:.1f}; search_document alone {doc_us:.1f} µs/event"
        )
        for name, values in rates.items():
            self.rows.append(
                Row(
                    f"writer ingest, {name} (min/med)",
                    f"{min(values):,.0f} / {med[name]:,.0f} ev/s",
                    floor=_floor_ratio(self.floor, med[name]),
                )
            )
        self.rows.append(
            Row(
                "full text cost on the writer (shipped / foundation)",
                f"{foundation / shipped:.3f}x throughput; +{shipped - foundation:.1f} µs/event"
                f" (FTS INSERT {shipped - no_fts_insert_us:.1f}, search_document {doc_us:.1f})",
            )
        )
        self.rows.append(
            Row(
                "facet indexes' cost on the writer (shipped / without)",
                f"{bare / shipped:.3f}x throughput; +{shipped - bare:.1f} µs/event",
            )
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> None:
        a = self.args
        steps = set(a.steps.split(","))
        self.code = code_state()
        print(f"code under test: {self.code}")
        self.step_floor()
        seed = seeded(SeedSpec(a.events, a.others, a.per_other), Path(a.work))
        shapes = shapes_for(seed)
        if steps & {"queries", "walks"}:
            self.server = seed.server()
            self.server.start()
            print(f"server pid {self.server.pid} on {seed.db_path}")
            headers = {"Authorization": f"Bearer {seed.token()}"}
            with httpx.Client(base_url=self.server.url, headers=headers, timeout=120.0) as client:
                if "queries" in steps:
                    self.step_queries(client, shapes)
                if "walks" in steps:
                    if "queries" not in steps:
                        self.http_floor = statistics.median(_timed(client, shapes[0], 200, 10))
                    self.step_walks(client)
            self.server.stop()
        if "explain" in steps:
            self.step_explain(seed, shapes)
        if "ingest" in steps:
            self.step_fts_ingest()
        self.summary()

    def summary(self) -> None:
        now = code_state()
        if now.split()[1] != self.code.split()[1]:
            print(
                f"\nWARNING: src/ changed during the run ({self.code} -> {now}):"
                " some numbers measure one version and some the other"
            )
        else:
            print(f"\ncode under test unchanged during the run: {now}")
        print(
            f"\nsummary ({self.args.events:,} events in {MAIN_TENANT} + {self.args.others} tenants"
            f" of {self.args.per_other:,}; latency floor: GET /healthz p50"
            f" {_ms(self.http_floor)} ms on the same server; ingest floor: {SQLITE_FLOOR})"
        )
        widths = [max(len(getattr(r, f)) for r in self.rows) for f in Row.__slots__]
        for r in self.rows:
            cells = [getattr(r, f).ljust(w) for f, w in zip(Row.__slots__, widths, strict=True)]
            print("  " + "  ".join(cells).rstrip())


def _floor_ratio(floor: dict[str, float], rate: float) -> str:
    base = next((v for k, v in floor.items() if k.startswith(SQLITE_FLOOR)), None)
    return f"{rate / base:.3f}x {SQLITE_FLOOR} floor" if base else "n/a"


def _slow(shape: Shape) -> bool:
    """Worth a plan: over half its target at p95 (median of rounds)."""
    if shape.target_ms is None or not shape.rounds:
        return True
    return statistics.median(p["p95"] for p in shape.rounds) * 1e3 > shape.target_ms / 2


def _get(client: httpx.Client, path: str, params: dict[str, str]) -> Any:
    response = client.get(path, params=params)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
    return response.json()


def _timed(client: httpx.Client, shape: Shape, requests: int, seconds: float) -> list[float]:
    out: list[float] = []
    deadline = time.monotonic() + seconds
    for i in range(requests):
        if time.monotonic() > deadline and len(out) >= 5:
            break
        params = shape.params[i % len(shape.params)]
        t0 = time.perf_counter()
        response = client.get(shape.path, params=params)
        response.read()
        out.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"GET {shape.path} {params}: {response.status_code}")
    return out


def _service_call(service: Any, path: str, params: dict[str, str]) -> None:
    from trailkeep.query.filters import FILTER_COLUMNS, Sort

    filters = {k: [v] for k, v in params.items() if k in FILTER_COLUMNS}
    start = params.get("start")
    if start is not None:  # the route normalizes times to the fixed-width form
        from trailkeep.api.params import normalize_time

        start = normalize_time(start, "start")
    if path == "/v1/facets":
        service.facets(MAIN_TENANT, filters=filters, start=start, end=None, q=params.get("q"))
    else:
        service.list(
            MAIN_TENANT,
            filters=filters,
            start=start,
            end=None,
            sort=Sort.DESC,
            limit=50,
            cursor=None,
            q=params.get("q"),
        )


def _count(conn: sqlite3.Connection, service: Any, params: dict[str, str]) -> int:
    from trailkeep.query.filters import EventQuery

    del conn  # the service counts through its own store
    return int(service.count(MAIN_TENANT, EventQuery(service.condition({}, params.get("q")))))


def _drop_facet_indexes(db: Path) -> None:
    """Drop the covering facet indexes (migration 6), to measure what they cost the writer."""
    from trailkeep.storage._sqlite_sql import FACET_INDEXES

    conn = sqlite3.connect(db)
    try:
        for index, _ in FACET_INDEXES.values():
            conn.execute(f"DROP INDEX {index}")
    finally:
        conn.close()


def _append_all(store: Any, events: list[Any]) -> None:
    """Append in chunks of 500 with up to 4 jobs queued, as 4 batch clients would."""
    pending: deque[Any] = deque()
    for lo in range(0, len(events), 500):
        pending.append(store.append(MAIN_TENANT, events[lo : lo + 500]))
        while len(pending) >= 4:
            pending.popleft().result()
    while pending:
        pending.popleft().result()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="100k-event tenant (+9 of 10k)")
    p.add_argument("--events", type=int, help="events of the big tenant (default 1,000,000)")
    p.add_argument("--others", type=int, default=9)
    p.add_argument("--per-other", type=int, help="events per other tenant (default events/10)")
    p.add_argument("--work", default=str(Path(__file__).resolve().parent / ".work"))
    p.add_argument(
        "--steps",
        default="queries,walks,explain,ingest",
        help="comma-separated subset of queries,walks,explain,ingest",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, help="per shape and round (default 100; quick 50)")
    p.add_argument("--shape-seconds", type=float, default=20.0)
    p.add_argument("--pages", type=int, help="cursor walk depth (default 10,000; quick 1,000)")
    p.add_argument("--page-repeats", type=int, default=100)
    p.add_argument(
        "--explain-all",
        action="store_true",
        help="plans of every shape, not just those over half their target",
    )
    p.add_argument("--fts-events", type=int, help="timed appends (default 100k; quick 30k)")
    p.add_argument("--fts-prefill", type=int, help="appended first (default 100k; quick 30k)")
    p.add_argument("--fts-repeats", type=int, default=3)
    p.add_argument("--floor", help="path to floor.py (default ../shared/bench/floor.py)")
    p.add_argument("--tmp", help="parent of the temp directory (default: system temp)")
    args = p.parse_args(argv)
    quick = args.quick
    args.events = args.events or (100_000 if quick else 1_000_000)
    args.per_other = args.per_other or args.events // 10
    args.requests = args.requests or (50 if quick else 100)
    args.pages = args.pages or (1_000 if quick else 10_000)
    args.fts_events = args.fts_events or (30_000 if quick else 100_000)
    args.fts_prefill = args.fts_prefill if args.fts_prefill is not None else args.fts_events
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(Bench(parse_args(argv)))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())

"""Ingest and list-query benchmark of a real trailkeep server, against the machine's floor.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/ingest.py --quick          # ~2 min: 100k events stored
    .venv/bin/python benchmarks/ingest.py                  # 1M events stored (several minutes)
    .venv/bin/python benchmarks/ingest.py --compare-integrity --profile /tmp/tk-prof

What it does, in order, each step bounded in count and time:

1. the machine floor: ``shared/bench/floor.py`` (hashing, JSON, SQLite inserts), plus the rate
   of fsync'd one-row SQLite commits in the temp directory;
2. a fresh SQLite database, a tenant and keys made with the ``trailkeep`` CLI, and
   ``trailkeep serve`` on a free loopback port;
3. batched ingest: 4 client processes, 500-event batches, durable (``synchronous=FULL``);
4. one event per request: 32 concurrent requests from 2 asyncio client processes;
5. batched seeding up to ``--events`` stored events, printing the rate per chunk;
6. ``GET /v1/events`` latency (sequential, p50/p95/p99) for several filter shapes, plus the
   same queries timed in-process against the store and their ``EXPLAIN QUERY PLAN``;
7. optionally (``--compare-integrity``) what the commitments cost: ``prepare_event`` against
   ``normalize_event`` (the same preparation without commitments) on the same events,
   in-process (the server has no switch to ingest without them; see ``integrity.py``).

Targets are printed as MET or MISSED; the exit status is non-zero only when the benchmark
itself could not run. ``--profile DIR`` samples the server with py-spy during steps 3 and 4
and prints the hottest lines.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _main import run_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import LoadResult, WorkerSpec, run_load
from _floor import FULL_COMMITS, find_floor, full_commit_rate, run_floor
from _profile import Sampler, hot_spots, snapshot_source, thread_names
from _queries import explain_shapes, http_latencies, percentiles, shapes_for
from _server import Server
from _targets import SQLITE_FLOOR, TARGETS, floor_rate, verdict
from _workload import TIMESTAMP_MODES, filter_values, utc_now

TARGET_P95_MS = 20.0


@dataclass(slots=True)
class Row:
    """One line of the summary table."""

    metric: str
    value: str
    target: str = ""
    status: str = ""
    floor: str = ""


class Bench:
    """One benchmark run: its options, its temp directory, its server and its results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="trailkeep-bench-", dir=args.tmp))
        self.servers: list[Server] = []
        self.samplers: list[Sampler] = []
        self.rows: list[Row] = []
        self.floor: dict[str, float] = {}
        self.now = utc_now()
        self.stored = 0

    # -- plumbing --------------------------------------------------------------------------

    def cleanup(self) -> None:
        for sampler in self.samplers:
            sampler.stop()
        for server in self.servers:
            server.stop()
        if self.args.keep:
            print(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def server(self, name: str, env: dict[str, str] | None = None) -> tuple[Server, str, str]:
        server = Server(self.root / name, env or {})
        self.servers.append(server)
        keys = server.provision()
        if self.args.profile:  # keep the code py-spy will point into, as it is at start
            snapshot_source(Path(self.args.profile) / f"src-{name}")
        server.start()
        print(f"server {name}: pid {server.pid} at {server.url}, database {server.db_path}")
        return server, keys.writer, keys.reader

    def floor_ratio(self, rate: float) -> str:
        base = floor_rate(self.floor)
        return f"{rate / base:.3f}x sqlite floor" if base else "n/a"

    def target_row(self, key: str, value: float | None, shown: str) -> None:
        """A summary row for one of issue 18's targets (``_targets.TARGETS``)."""
        target = TARGETS[key]
        self.rows.append(Row(target.name, shown, target.text(), verdict(target, value)))

    def ingest_rows(self, kind: str, result: LoadResult, cores: float) -> None:
        """The rate (as a ratio to the same run's floor), CPU and latency targets of a step."""
        base = floor_rate(self.floor)
        rate = result.events_per_second
        ratio = rate / base if base else None
        shown = f"{rate:,.0f} events/s" + (f" = {ratio:.3f}x of {base:,.0f}/s" if ratio else "")
        self.target_row(f"{kind}_ratio", ratio, shown)
        us = cores * result.seconds / result.events * 1e6 if result.events else None
        self.target_row(f"{kind}_cpu", us, "n/a" if us is None else f"{us:.1f} µs/event")
        if kind == "single":
            p99 = percentiles(result.latencies)["p99"] * 1e3 if result.latencies else None
            self.target_row("single_p99", p99, "n/a" if p99 is None else f"{p99:.1f} ms")

    def floor_us_per_event(self) -> float | None:
        """CPU per event of the floor's whole pipeline (JSON + leaf + Merkle + SQLite), in µs."""
        rates = [v for k, v in self.floor.items() if k != FULL_COMMITS]
        return sum(1e6 / r for r in rates) if rates else None

    def load(
        self, label: str, server: Server, specs: list[WorkerSpec], profile: str | None
    ) -> tuple[LoadResult, float]:
        """Run workers against ``server``; return the result and the server CPU cores used."""
        cpu: dict[str, float] = {}
        threads: dict[str, dict[int, float]] = {}
        sampler = None
        if profile and self.args.profile:
            out = Path(self.args.profile)
            out.mkdir(parents=True, exist_ok=True)
            sampler = Sampler(server.pid, out / f"{profile}.txt", gil=self.args.profile_gil)
            self.samplers.append(sampler)

        def on_start() -> None:
            if sampler:
                sampler.start()
            cpu["start"] = server.cpu_seconds()
            threads["start"] = server.thread_cpu_seconds()

        def on_end() -> None:
            cpu["end"] = server.cpu_seconds()
            threads["end"] = server.thread_cpu_seconds()
            if sampler:
                sampler.stop()

        result = run_load(specs, on_start, on_end)
        cores = (cpu["end"] - cpu["start"]) / result.seconds if result.seconds else 0.0
        self.report(label, result, cores)
        names = thread_names(sampler.output) if sampler else {}
        by_thread = _threads_line(server.pid, threads, result.seconds, names)
        print(f"  server CPU by thread: {by_thread}")
        if sampler:
            print(f"  py-spy profile of the server ({sampler.output}):")
            print(hot_spots(sampler.output, top=self.args.profile_top))
        return result, cores

    def report(self, label: str, r: LoadResult, cores: float) -> None:
        lat = percentiles(r.latencies)
        us = cores * r.seconds / r.events * 1e6 if r.events else float("nan")
        floor_us = self.floor_us_per_event()
        vs = f" = {us / floor_us:.1f}x the floor's {floor_us:.1f} µs" if floor_us else ""
        print(
            f"{label}: {r.events:,} events, {r.requests:,} requests in {r.seconds:.2f} s"
            f" = {r.events_per_second:,.0f} events/s ({self.floor_ratio(r.events_per_second)})"
        )
        print(
            f"  request latency ms p50 {lat['p50'] * 1e3:.1f}  p95 {lat['p95'] * 1e3:.1f}"
            f"  p99 {lat['p99'] * 1e3:.1f}; errors {r.errors}"
            + (f" (first: {r.first_error})" if r.first_error else "")
        )
        print(f"  server CPU {cores:.2f} cores, {us:.1f} µs/event{vs};"
              f" client CPU {r.client_cpu / r.seconds if r.seconds else 0:.2f} cores")  # fmt: skip

    def batch_specs(self, url: str, token: str, events: int, seed: int) -> list[WorkerSpec]:
        clients, size = self.args.batch_clients, self.args.batch_size
        per_worker = math.ceil(events / (clients * size))
        return [
            WorkerSpec("batch", url, token, seed + w, self.now, per_worker,
                       self.args.max_seconds, batch_size=size, pool=self.args.pool,
                       timestamps=self.args.timestamps, minimal=self.args.minimal)
            for w in range(clients)
        ]  # fmt: skip

    # -- steps -----------------------------------------------------------------------------

    def step_floor(self) -> None:
        path = find_floor(self.args.floor)
        if path is None or not path.exists():
            print(f"floor: not found ({path or '../shared/bench/floor.py'}); ratios are n/a")
        else:
            print(f"floor: running {path}")
            self.floor, text = run_floor(path)
            print("\n".join(f"  {line}" for line in text.strip().splitlines()))
        commits = full_commit_rate(str(self.root))
        print(f"  {FULL_COMMITS}: {commits:,.0f}")
        self.floor[FULL_COMMITS] = commits

    def step_batched(
        self, server: Server, token: str, label: str, profile: str | None, *, main: bool = True
    ) -> float:
        specs = self.batch_specs(server.url, token, self.args.batch_events, seed=100)
        result, cores = self.load(label, server, specs, profile)
        if main:  # events in the server whose list queries are measured
            self.stored += result.events
            self.ingest_rows("batched", result, cores)
        return result.events_per_second

    def step_single(self, server: Server, token: str) -> float:
        procs = self.args.single_procs
        per_proc = math.ceil(self.args.single_requests / procs)
        conc = math.ceil(self.args.single_clients / procs)
        specs = [
            WorkerSpec("single", server.url, token, 200 + w, self.now, per_proc,
                       self.args.single_seconds, concurrency=conc, client=self.args.client,
                       timestamps=self.args.timestamps, minimal=self.args.minimal)
            for w in range(procs)
        ]  # fmt: skip
        label = (
            f"single-event ingest ({conc * procs} concurrent, {procs} procs,"
            f" {self.args.client} client)"
        )
        result, cores = self.load(label, server, specs, "single")
        self.stored += result.events
        self.ingest_rows("single", result, cores)
        return result.events_per_second

    def step_seed(self, server: Server, token: str) -> float | None:
        remaining = self.args.events - self.stored
        if remaining <= 0:
            return None
        print(f"seeding {remaining:,} more events through the batch API"
              f" (chunks of {self.args.seed_chunk:,})")  # fmt: skip
        events = seconds = 0.0
        chunk_no = 0
        while remaining > 0:
            chunk = min(remaining, self.args.seed_chunk)
            specs = self.batch_specs(server.url, token, chunk, seed=100)
            result, _ = self.load(f"  seed chunk {chunk_no} (to ~{self.stored + chunk:,} stored)",
                                  server, specs, None)  # fmt: skip
            if result.events == 0:
                raise RuntimeError(f"seeding wrote nothing: {result.first_error}")
            self.stored += result.events
            remaining -= result.events
            events += result.events
            seconds += result.seconds
            chunk_no += 1
        return events / seconds

    def step_queries(self, server: Server, reader: str) -> None:
        pairs = filter_values(100, 40, self.now)
        shapes = shapes_for(pairs)
        print(f"list latency at {self.stored:,} stored events ({self.args.queries} sequential"
              " requests per shape, after 10 warm-up requests):")  # fmt: skip
        for shape in shapes:
            lat, errors = http_latencies(server.url, reader, shape, self.args.queries,
                                         self.args.query_seconds)  # fmt: skip
            p = percentiles(lat)
            met = p["p95"] * 1e3 <= TARGET_P95_MS
            print(
                f"  {shape.name:30s} p50 {p['p50'] * 1e3:6.1f}  p95 {p['p95'] * 1e3:6.1f}"
                f"  p99 {p['p99'] * 1e3:6.1f} ms  ({len(lat)} requests, {errors} errors)"
            )
            self.rows.append(
                Row(
                    f"GET {shape.name} p95",
                    f"{p['p95'] * 1e3:.1f} ms (p50 {p['p50'] * 1e3:.1f}, p99 {p['p99'] * 1e3:.1f})",
                    f"<= {TARGET_P95_MS:.0f} ms",
                    "MET" if met else "MISSED",
                )
            )
        if self.args.explain:
            print("the same queries in-process, and their plans:")
            print(explain_shapes(server.db_path, "acme", shapes))

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> None:
        self.step_floor()
        server, writer, reader = self.server("main")
        self.step_batched(
            server,
            writer,
            f"batched ingest ({self.args.batch_clients}"
            f" clients x {self.args.batch_size}/batch, FULL)",
            "batched",
        )
        self.step_single(server, writer)
        seeded = self.step_seed(server, writer)
        if seeded is not None:
            self.rows.append(
                Row(
                    "sustained batched (seeding)",
                    f"{seeded:,.0f} events/s",
                    floor=self.floor_ratio(seeded),
                )
            )
        self.step_queries(server, reader)
        server.stop()
        if self.args.compare_integrity:
            from integrity import _prepare_cost

            with_us, without_us = _prepare_cost(3)
            self.rows.append(
                Row(
                    "prepare with / without commitments",
                    f"{with_us:.1f} / {without_us:.1f} µs per event ({with_us / without_us:.2f}x)",
                )
            )
        self.summary()

    def summary(self) -> None:
        print(f"\nsummary ({self.stored:,} events stored; floor = {SQLITE_FLOOR},"
              " synchronous=NORMAL; trailkeep runs FULL)")  # fmt: skip
        widths = [max(len(getattr(r, f)) for r in self.rows) for f in Row.__slots__]
        for r in self.rows:
            cells = [getattr(r, f).ljust(w) for f, w in zip(Row.__slots__, widths, strict=True)]
            print("  " + "  ".join(cells).rstrip())


def _threads_line(
    pid: int, threads: dict[str, dict[int, float]], seconds: float, names: dict[int, str]
) -> str:
    """Cores used per server thread over the window, busiest first (short-lived ones summed)."""
    start, end = threads.get("start", {}), threads.get("end", {})
    used = {tid: end[tid] - start.get(tid, 0.0) for tid in end}
    parts = []
    for tid, secs in sorted(used.items(), key=lambda kv: -kv[1])[:4]:
        name = names.get(tid) or ("main" if tid == pid else f"tid {tid}")
        parts.append(f"{name} {secs / seconds:.2f}")
    rest = sum(sorted(used.values(), reverse=True)[4:])
    if rest:
        parts.append(f"others {rest / seconds:.2f}")
    return ", ".join(parts) + " cores"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--quick",
        action="store_true",
        help="small run: 100k events stored, 50k batched, 8 s single-event",
    )
    p.add_argument(
        "--events",
        type=int,
        default=None,
        help="events stored before the list queries (default 1,000,000; quick 100,000)",
    )
    p.add_argument(
        "--batch-events",
        type=int,
        default=None,
        help="events in the measured batched run (default 200,000; quick 50,000)",
    )
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--batch-clients", type=int, default=4)
    p.add_argument("--pool", type=int, default=8, help="distinct batch bodies per client")
    p.add_argument(
        "--timestamps",
        choices=TIMESTAMP_MODES,
        default="now",
        help="client timestamps: 'now' (stamped at send, near time order), 'spread'"
        " (uniform over 7 days: backfill, random index inserts) or 'none' (server's)",
    )
    p.add_argument(
        "--full-answers",
        dest="minimal",
        action="store_false",
        help="ingest without 'Prefer: return=minimal' (the server echoes every stored event;"
        " the SDK's BatchLogger asks for minimal answers, and so does this by default)",
    )
    p.add_argument("--single-clients", type=int, default=32, help="concurrent requests in total")
    p.add_argument("--single-procs", type=int, default=2)
    p.add_argument("--single-requests", type=int, default=60_000)
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="single-event client: raw keep-alive HTTP/1.1 (~30 µs CPU a request) or"
        " httpx.AsyncClient (~1.4 ms CPU a request: it would eat a core here)",
    )
    p.add_argument("--single-seconds", type=float, default=None, help="default 20; quick 8")
    p.add_argument("--seed-chunk", type=int, default=200_000)
    p.add_argument("--queries", type=int, default=300, help="requests per list shape")
    p.add_argument(
        "--query-seconds",
        type=float,
        default=60.0,
        help="time bound per list shape (a slow shape reports fewer requests)",
    )
    p.add_argument(
        "--no-explain",
        dest="explain",
        action="store_false",
        help="skip in-process query timings and EXPLAIN QUERY PLAN",
    )
    p.add_argument(
        "--compare-integrity",
        action="store_true",
        help="also time event preparation with and without commitments, in-process",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy the server during the batched and single-event steps",
    )
    p.add_argument("--profile-gil", action="store_true", help="py-spy --gil: GIL holders only")
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument(
        "--floor",
        help="path to floor.py (default $TRAILKEEP_BENCH_FLOOR or ../shared/bench/floor.py)",
    )
    p.add_argument(
        "--max-seconds", type=float, default=600.0, help="time bound of any one load step"
    )
    p.add_argument("--tmp", help="parent of the temp directory (default: system temp)")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (database)")
    args = p.parse_args(argv)
    if args.events is None:
        args.events = 100_000 if args.quick else 1_000_000
    if args.batch_events is None:
        args.batch_events = 50_000 if args.quick else 200_000
    if args.single_seconds is None:
        args.single_seconds = 8.0 if args.quick else 20.0
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(Bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

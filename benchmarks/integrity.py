"""What tamper evidence costs and how fast it answers, on a real server, against the floor.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/integrity.py --quick     # 100k-event tenant, a few minutes
    .venv/bin/python benchmarks/integrity.py             # 1M-event tenant (seeded once, cached)

Steps, each bounded in count and time:

1. the machine floor (``shared/bench/floor.py``: JSON, SHA-256 leaves, Merkle append, SQLite);
2. **ingest cost**: batched ingest (4 client processes x 500-event batches, durable ``FULL``)
   into a fresh server (commitments, leaves, tree nodes, checkpoints), ``--repeats`` times;
   the server CPU and context switches per event. The server cannot ingest without its tree
   (no switch may break that invariant), so what the commitments cost is measured in-process
   on the same events: ``prepare_event`` (normalization + salts + commitments + leaf prefix)
   against ``normalize_event`` (the same without commitments), one core, min of
   ``--repeats``; their difference as a share of the server's CPU per event gives the
   estimated throughput ratio with / without commitments (CPU-bound ingest);
3. **proofs**: a real server on the cached seeded database (``_seed``: one tenant of
   ``--events`` plus 9 of a tenth of it); sequential ``GET /v1/events/{id}/proof``,
   ``/v1/log/proof/inclusion`` (random index and size) and ``/v1/log/proof/consistency``
   (random sizes), ``--proof-rounds`` rounds; ``GET /healthz`` in the same rounds is the
   HTTP floor of this server;
4. **checkpoint coverage**: a fresh server under sustained batched ingest (``--cp-writers``
   processes sending ``--cp-batch``-event batches back to back, ``checkpoint_interval`` 1 s);
   each writer records the ack time and ``seq`` range of every batch; a watcher polls
   ``GET /v1/log/checkpoint`` every 10 ms; latency of an event = first time a checkpoint of
   size > its seq was seen minus its ack time (one monotonic clock, shared by the processes);
5. **offline verification**: ``trailkeep dump`` of the big tenant (cached beside the database
   while its checkpoint is unchanged), then ``taskset -c 0 trailkeep verify dump`` (one core,
   the whole CLI process, startup included), ``--verify-runs`` times: wall and CPU seconds.

Targets print as MET or MISSED; the exit status is non-zero only when the benchmark could
not run. Key numbers are repeated (the machine is shared): min and median are reported.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
import orjson

from _main import run_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _clients import WorkerSpec, run_load
from _floor import find_floor, run_floor
from _queries import percentiles
from _seed import MAIN_TENANT, Seeded, SeedSpec, code_state, seeded
from _server import Server, cli_path
from _workload import TS_SLOT, batch_bodies, stamp, utc_now
from ingest import Row

TARGET_RATIO = 0.85
TARGET_PROOF_P99_MS = 5.0
TARGET_COVER_P99_S = 1.2
TARGET_VERIFY_S = 10.0
SQLITE_FLOOR = "sqlite insert"


def _prepare_cost(repeats: int, events: int = 20_000) -> tuple[float, float]:
    """µs per event of ``prepare_event`` and of ``normalize_event`` on the ingest workload.

    In this process, on one core, batch by batch as ingest does (one salt pool per batch).
    """
    from trailkeep.service.events import Limits, SaltPool, normalize_event, prepare_event

    limits = Limits()
    bodies = batch_bodies(7, events // 500, 500, utc_now())
    batches = [orjson.loads(b.replace(TS_SLOT, stamp()))["events"] for b in bodies]

    def timed(fn: Any) -> float:
        best = math.inf
        for _ in range(max(repeats, 1)):
            t0 = time.perf_counter()
            for batch in batches:
                fn(batch)
            best = min(best, time.perf_counter() - t0)
        return best / (len(batches) * 500) * 1e6

    def with_commitments(batch: list[dict[str, Any]]) -> None:
        pool = SaltPool(len(batch))
        for i, c in enumerate(batch):
            prepare_event(dict(c), limits, index=i, salt_pool=pool)

    def without(batch: list[dict[str, Any]]) -> None:
        for i, c in enumerate(batch):
            normalize_event(dict(c), limits, index=i)

    return timed(with_commitments), timed(without)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """``min / median`` of repeated measurements, for the summary."""
    return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="trailkeep-integrity-", dir=args.tmp))
        self.rows: list[Row] = []
        self.floor: dict[str, float] = {}
        self.servers: list[Server] = []

    def cleanup(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self, server: Server) -> Server:
        self.servers.append(server)
        server.start()
        return server

    def floor_pipeline(self) -> float | None:
        """Events/s of the floor's whole per-event pipeline (JSON + leaf + Merkle + SQLite)."""
        rates = list(self.floor.values())
        return 1.0 / sum(1.0 / r for r in rates) if rates else None

    def floor_ratio(self, rate: float, label: str = SQLITE_FLOOR) -> str:
        base = next((v for k, v in self.floor.items() if k.startswith(label)), None)
        return f"{rate / base:.3f}x {label} floor" if base else "n/a"

    # -- 1. floor ----------------------------------------------------------------------------

    def step_floor(self) -> None:
        path = find_floor(self.args.floor)
        if path is None or not path.exists():
            print("floor: not found; ratios are n/a")
            return
        print(f"floor: running {path}")
        self.floor, text = run_floor(path)
        print("\n".join(f"  {line}" for line in text.strip().splitlines()))

    # -- 2. ingest on vs off -----------------------------------------------------------------

    def ingest_once(self, rep: int) -> tuple[float, float]:
        server = Server(self.root / f"ingest-{rep}", {})
        keys = server.provision()
        self.start(server)
        a = self.args
        per_worker = math.ceil(a.ingest_events / (a.batch_clients * a.batch_size))
        now = utc_now()
        specs = [
            WorkerSpec(
                "batch",
                server.url,
                keys.writer,
                100 + w,
                now,
                per_worker,
                300.0,
                batch_size=a.batch_size,
                pool=8,
            )
            for w in range(a.batch_clients)
        ]
        cpu: dict[str, float] = {}
        switches: dict[str, tuple[int, int]] = {}

        def on_start() -> None:
            cpu.update(start=server.cpu_seconds())
            switches.update(start=server.context_switches())

        def on_end() -> None:
            cpu.update(end=server.cpu_seconds())
            switches.update(end=server.context_switches())

        try:
            result = run_load(specs, on_start, on_end)
        finally:
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)
        if result.errors:
            print(f"  ({result.errors} errors: {result.first_error})")
        us = (cpu["end"] - cpu["start"]) / max(result.events, 1) * 1e6
        per_k = [(b - a) * 1e3 / max(result.events, 1)
                 for a, b in zip(switches["start"], switches["end"], strict=True)]  # fmt: skip
        lat = percentiles(result.latencies)
        print(
            f"  run {rep}: {result.events:,} events in {result.seconds:.2f} s"
            f" = {result.events_per_second:,.0f} events/s; server CPU {us:.1f} µs/event;"
            f" context switches {per_k[0]:.0f} voluntary + {per_k[1]:.0f} forced per 1k events;"
            f" batch p50 {_ms(lat['p50'])} p99 {_ms(lat['p99'])} ms"
        )
        return result.events_per_second, us

    def step_ingest(self) -> None:
        a = self.args
        print(
            f"\ningest cost: {a.ingest_events:,} events per run, {a.batch_clients} clients x"
            f" {a.batch_size}/batch, synchronous=FULL, fresh database per run, x{a.repeats}"
        )
        rates: list[float] = []
        cpu: list[float] = []
        for rep in range(a.repeats):
            rate, us = self.ingest_once(rep)
            rates.append(rate)
            cpu.append(us)
        with_us, without_us = _prepare_cost(a.repeats)
        server_us = statistics.median(cpu)
        share = (with_us - without_us) / server_us
        ratio = 1.0 / (1.0 + share) if share > 0 else 1.0
        print(
            f"  prepare per event: {with_us:.1f} µs with commitments, {without_us:.1f} µs"
            f" without; commitments {with_us - without_us:.1f} µs = {share:.1%} of the"
            f" server's {server_us:.1f} µs/event; estimated ratio with/without {ratio:.3f}"
        )
        self.rows += [
            Row(
                "batched ingest (min/med)",
                _spread(rates, "{:,.0f}") + " ev/s",
                floor=self.floor_ratio(statistics.median(rates)),
            ),
            Row("server CPU/event (median)", f"{server_us:.1f} µs"),
            Row(
                "prepare with / without commitments (min)",
                f"{with_us:.1f} / {without_us:.1f} µs per event",
            ),
            Row(
                "est. ingest ratio with/without commitments",
                f"{ratio:.3f}",
                f">= {TARGET_RATIO}",
                "MET" if ratio >= TARGET_RATIO else "MISSED",
            ),
        ]

    # -- 3. proofs ---------------------------------------------------------------------------

    def step_proofs(self, seed: Seeded) -> None:
        a = self.args
        server = self.start(seed.server())
        print(f"\nproofs: server pid {server.pid} on {seed.db_path}")
        headers = {"Authorization": f"Bearer {seed.token()}"}
        rng = random.Random(5)
        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
            size = int(client.get("/v1/log/checkpoint").raise_for_status().text.split("\n")[1])
            ids = _event_ids(seed.db_path, MAIN_TENANT, size, a.proof_requests, rng)
            print(
                f"  tenant {MAIN_TENANT}: checkpoint size {size:,};"
                f" {a.proof_rounds} rounds x {a.proof_requests} requests per kind"
            )
            inclusions = [_index_size(rng, 0, size) for _ in ids]
            consistencies = [_index_size(rng, 1, size) for _ in ids]
            kinds: dict[str, list[str]] = {
                "GET /healthz (HTTP floor)": ["/healthz"] * a.proof_requests,
                "GET /v1/events/{id}/proof": [f"/v1/events/{i}/proof" for i in ids],
                "GET /v1/log/proof/inclusion": [
                    f"/v1/log/proof/inclusion?index={i}&size={n}" for i, n in inclusions
                ],
                "GET /v1/log/proof/consistency": [
                    f"/v1/log/proof/consistency?from={m}&to={n}" for m, n in consistencies
                ],
            }
            for paths in kinds.values():  # warm-up, and every path must answer 200
                for path in paths[:20]:
                    client.get(path).raise_for_status()
            p99s: dict[str, list[float]] = {k: [] for k in kinds}
            all_lat: dict[str, list[float]] = {k: [] for k in kinds}
            for r in range(a.proof_rounds):
                for kind, paths in kinds.items():
                    lat = _timed_gets(client, paths)
                    p = percentiles(lat)
                    p99s[kind].append(p["p99"])
                    all_lat[kind] += lat
                    print(
                        f"  round {r} {kind:31s} p50 {_ms(p['p50'])}  p95 {_ms(p['p95'])}"
                        f"  p99 {_ms(p['p99'])} ms"
                    )
        server.stop()
        inproc = _in_process_proofs(seed, ids, inclusions, consistencies, a.proof_rounds)
        floor = percentiles(all_lat["GET /healthz (HTTP floor)"])
        print(f"  /healthz over all rounds: p50 {_ms(floor['p50'])}  p99 {_ms(floor['p99'])} ms")
        for kind in list(kinds)[1:]:
            p = percentiles(all_lat[kind])
            q = percentiles(inproc[kind])
            print(
                f"  in-process (LogService, no HTTP) {kind.split(' ', 1)[1]:24s}"
                f" p50 {_ms(q['p50'])}  p99 {_ms(q['p99'])} ms"
            )
            best, med = min(p99s[kind]), statistics.median(p99s[kind])
            self.rows.append(
                Row(
                    f"{kind.split(' ', 1)[1]} p99 at {size:,} (min/med of rounds)",
                    f"{_ms(best)} / {_ms(med)} ms (p50 {_ms(p['p50'])}, p95 {_ms(p['p95'])})",
                    f"p99 <= {TARGET_PROOF_P99_MS:.0f} ms",
                    "MET" if med * 1e3 <= TARGET_PROOF_P99_MS else "MISSED",
                    f"p50 {p['p50'] / floor['p50']:.1f}x /healthz (p99 {_ms(floor['p99'])});"
                    f" in-process p99 {_ms(q['p99'])}",
                )
            )

    # -- 4. checkpoint coverage --------------------------------------------------------------

    def step_coverage(self) -> None:
        a = self.args
        env = {"TRAILKEEP_CHECKPOINT_INTERVAL": str(a.cp_interval)} if a.cp_interval else {}
        server = Server(self.root / "coverage", env)
        keys = server.provision()
        self.start(server)
        print(
            f"\ncheckpoint coverage: {a.cp_writers} writer processes x {a.cp_batch}-event"
            f" batches back to back for {a.cp_seconds:.0f} s; watcher every"
            f" {a.cp_poll * 1e3:.0f} ms; checkpoint_interval {a.cp_interval or 'default'}"
            f" (server pid {server.pid})"
        )
        seen: list[tuple[float, int]] = []  # (monotonic time first seen, checkpoint size)
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch, daemon=True, args=(server.url, keys.reader, a.cp_poll, seen, stop)
        )
        watcher.start()
        ctx = get_context("spawn")
        go, results = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(
                target=_cp_writer,
                daemon=True,
                args=(server.url, keys.writer, w, a.cp_batch, a.cp_seconds, go, results),
            )
            for w in range(a.cp_writers)
        ]
        acks: list[tuple[float, int, int]] = []
        try:
            for p in procs:
                p.start()
            time.sleep(2.0)  # let the writers import and build their bodies
            go.set()
            for _ in procs:
                out = results.get(timeout=a.cp_seconds + 120)
                if isinstance(out, str):
                    raise RuntimeError(f"a coverage writer failed: {out}")
                acks += out
            last_seq = max(hi for _, _, hi in acks)
            deadline = time.monotonic() + 10
            while (not seen or seen[-1][1] <= last_seq) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            watcher.join(5)
            for p in procs:
                p.join(5)
            server.stop()
        self._report_coverage(acks, seen)

    def _report_coverage(
        self, acks: list[tuple[float, int, int]], seen: list[tuple[float, int]]
    ) -> None:
        times = [t for t, _ in seen]
        sizes = [s for _, s in seen]
        latencies: list[float] = []
        uncovered = 0
        for ack, lo, hi in acks:
            for seq in range(lo, hi + 1):
                k = bisect.bisect_right(sizes, seq)  # first checkpoint with size > seq
                if k == len(sizes):
                    uncovered += 1
                else:
                    latencies.append(times[k] - ack)
        events = sum(hi - lo + 1 for _, lo, hi in acks)
        span = max(a for a, _, _ in acks) - min(a for a, _, _ in acks)
        first_ack = min(a for a, _, _ in acks)
        loaded = [t for t in times if t >= first_ack]
        gaps = [b - a for a, b in itertools.pairwise(loaded)] or [float("nan")]
        p = percentiles(latencies)
        print(
            f"  {events:,} events acknowledged in {span:.1f} s = {events / span:,.0f} events/s;"
            f" {len(seen)} checkpoints seen under load, median gap {statistics.median(gaps):.3f} s,"
            f" max gap {max(gaps):.3f} s; {uncovered} events never covered"
        )
        print(
            f"  ack → covered by a signed checkpoint: p50 {p['p50']:.3f}  p95 {p['p95']:.3f}"
            f"  p99 {p['p99']:.3f}  max {max(latencies):.3f} s"
        )
        self.rows.append(
            Row(
                f"ack → checkpointed p99 (@{events / span:,.0f} ev/s)",
                f"{p['p99']:.3f} s (p50 {p['p50']:.3f}, p95 {p['p95']:.3f},"
                f" max {max(latencies):.3f})",
                f"<= {TARGET_COVER_P99_S} s",
                "MET" if p["p99"] <= TARGET_COVER_P99_S and not uncovered else "MISSED",
            )
        )

    # -- 5. offline verification -------------------------------------------------------------

    def step_verify(self, seed: Seeded) -> None:
        a = self.args
        dump = seed.dir / f"dump-{MAIN_TENANT}.jsonl"
        note = _latest_note(seed.db_path, MAIN_TENANT)
        if not _dump_matches(dump, note):
            print(f"\ndump: trailkeep dump --tenant {MAIN_TENANT} -o {dump}")
            t0 = time.perf_counter()
            _run(
                [
                    cli_path(),
                    "dump",
                    "--tenant",
                    MAIN_TENANT,
                    "-o",
                    str(dump),
                    "--database",
                    seed.database,
                ]
            )
            dt = time.perf_counter() - t0
            size = int(note.split("\n")[1])
            print(
                f"  {size:,} events, {dump.stat().st_size / 2**20:,.0f} MiB in {dt:.1f} s"
                f" = {size / dt:,.0f} events/s"
            )
        else:
            print(f"\ndump: reusing {dump} (its checkpoint is still the latest)")
        events = int(note.split("\n")[1])
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        argv = [*pin, cli_path(), "verify", "dump", str(dump), "--key", seed.public_key]
        print(f"verify: {' '.join(argv[:-1])} KEY  (x{a.verify_runs})")
        walls, cpus = [], []
        for r in range(a.verify_runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            out = _run(argv)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            walls.append(wall)
            cpus.append(cpu)
            ok = "OK" if "OK" in out else "no OK in the output"
            print(
                f"  run {r}: {wall:.2f} s wall, {cpu:.2f} s CPU = {events / wall:,.0f} events/s"
                f" ({ok})"
            )
        best = min(walls)
        pipeline = self.floor_pipeline()
        floor = f"{events / best / pipeline:.3f}x floor pipeline" if pipeline else "n/a"
        self.rows.append(
            Row(
                f"verify dump, {events:,} events, 1 core (min/med)",
                f"{_spread(walls)} s wall ({events / best:,.0f} ev/s); CPU {_spread(cpus)} s",
                f"<= {TARGET_VERIFY_S:.0f} s",
                "MET" if statistics.median(walls) <= TARGET_VERIFY_S else "MISSED",
                floor,
            )
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> None:
        a = self.args
        steps = set(a.steps.split(","))
        self.code = code_state()
        print(f"code under test: {self.code}")
        self.step_floor()
        if "ingest" in steps:
            self.step_ingest()
        if "coverage" in steps:
            self.step_coverage()
        if steps & {"proofs", "verify"}:
            spec = SeedSpec(a.events, a.others, a.per_other)
            seed = seeded(spec, Path(a.work))
            if "proofs" in steps:
                self.step_proofs(seed)
            if "verify" in steps:
                self.step_verify(seed)
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
            f"\nsummary (floor: {SQLITE_FLOOR} at synchronous=NORMAL, trailkeep runs FULL;"
            " latencies: ratio of p50 to /healthz p50 on the same server)"
        )
        widths = [max(len(getattr(r, f)) for r in self.rows) for f in Row.__slots__]
        for r in self.rows:
            cells = [getattr(r, f).ljust(w) for f, w in zip(Row.__slots__, widths, strict=True)]
            print("  " + "  ".join(cells).rstrip())


# -- helpers (module level: the coverage writers run them in spawned processes) ----------------


def _event_ids(db: Path, tenant: str, size: int, count: int, rng: random.Random) -> list[str]:
    seqs = [rng.randrange(size) for _ in range(count)]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    marks = ",".join("?" * count)
    try:
        by_seq = dict(
            conn.execute(
                f"SELECT seq, id FROM events WHERE tenant_id = ? AND seq IN ({marks})",
                (tenant, *seqs),
            ).fetchall()
        )
    finally:
        conn.close()
    return [by_seq[s] for s in seqs]


def _index_size(rng: random.Random, low: int, size: int) -> tuple[int, int]:
    """A random (index or first size, size) pair, both below ``size`` and ordered."""
    first = rng.randint(low, size - 1)
    return first, rng.randint(first + 1, size)


def _in_process_proofs(
    seed: Seeded,
    ids: list[str],
    inclusions: list[tuple[int, int]],
    consistencies: list[tuple[int, int]],
    rounds: int,
) -> dict[str, list[float]]:
    """The same proofs from ``LogService`` in this process: the server's own share."""
    from trailkeep.api.services import Services
    from trailkeep.settings import Settings

    services = Services.build(Settings(database=seed.database, signing_key=seed.signing_key))
    log = services.log
    calls: dict[str, list[Any]] = {
        "GET /v1/events/{id}/proof": [
            lambda i=i: log.event_proof(MAIN_TENANT, i, None) for i in ids
        ],
        "GET /v1/log/proof/inclusion": [
            lambda i=i, n=n: log.inclusion_proof(MAIN_TENANT, i, n) for i, n in inclusions
        ],
        "GET /v1/log/proof/consistency": [
            lambda m=m, n=n: log.consistency_proof(MAIN_TENANT, m, n) for m, n in consistencies
        ],
    }
    out: dict[str, list[float]] = {k: [] for k in calls}
    try:
        for _ in range(rounds):
            for kind, fns in calls.items():
                for fn in fns:
                    t0 = time.perf_counter()
                    fn()
                    out[kind].append(time.perf_counter() - t0)
    finally:
        services.close()
    return out


def _timed_gets(client: httpx.Client, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        t0 = time.perf_counter()
        response = client.get(path)
        response.read()
        out.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")
    return out


def _watch(
    url: str, token: str, poll: float, seen: list[tuple[float, int]], stop: threading.Event
) -> None:
    """Append ``(time first seen, size)`` whenever the latest checkpoint grows."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    ) as client:
        last = -1
        while not stop.is_set():
            t0 = time.monotonic()
            response = client.get("/v1/log/checkpoint")
            now = time.monotonic()
            if response.status_code == 200:
                size = int(response.text.split("\n")[1])
                if size > last:
                    seen.append((now, size))
                    last = size
            time.sleep(max(poll - (now - t0), 0.0))


def _cp_writer(
    url: str, token: str, seed: int, batch: int, seconds: float, go: Any, results: Any
) -> None:
    """Send batches back to back; report ``(ack time, first seq, last seq)`` of each."""
    try:
        bodies = batch_bodies(1000 + seed, 8, batch, utc_now(), "spread")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        out: list[tuple[float, int, int]] = []
        with httpx.Client(base_url=url, headers=headers, timeout=60.0) as client:
            client.get("/healthz")
            go.wait(60)
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                response = client.post("/v1/events/batch", content=bodies[i % len(bodies)])
                ack = time.monotonic()
                if response.status_code != 201:
                    raise RuntimeError(f"{response.status_code} {response.text[:200]}")
                seqs = [e["seq"] for e in orjson.loads(response.content)["events"]]
                if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                    raise RuntimeError("a batch's seqs are not contiguous")
                out.append((ack, seqs[0], seqs[-1]))
                i += 1
        results.put(out)
    except Exception as exc:
        results.put(repr(exc))


def _latest_note(db: Path, tenant: str) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT note FROM checkpoints WHERE tenant_id = ? ORDER BY size DESC LIMIT 1", (tenant,)
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        raise RuntimeError(f"tenant {tenant} has no checkpoint")
    return str(row[0])


def _dump_matches(dump: Path, note: str) -> bool:
    if not dump.exists():
        return False
    with dump.open("rb") as fh:
        return bool(orjson.loads(fh.readline()).get("checkpoint") == note)


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])} ... failed ({done.returncode}):"
            f" {(done.stderr or done.stdout).strip()[-500:]}"
        )
    return done.stdout + done.stderr


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="100k-event tenant (+9 of 10k), shorter ingest and coverage runs",
    )
    p.add_argument("--events", type=int, help="events of the big tenant (default 1,000,000)")
    p.add_argument("--others", type=int, default=9, help="other tenants in the seeded database")
    p.add_argument("--per-other", type=int, help="events per other tenant (default events/10)")
    p.add_argument(
        "--work",
        default=str(Path(__file__).resolve().parent / ".work"),
        help="where seeded databases are cached",
    )
    p.add_argument(
        "--steps",
        default="ingest,proofs,coverage,verify",
        help="comma-separated subset of ingest,proofs,coverage,verify",
    )
    p.add_argument("--ingest-events", type=int, help="per ingest run (default 100k; quick 30k)")
    p.add_argument(
        "--repeats", type=int, help="ingest runs and prepare timings (default 3; quick 2)"
    )
    p.add_argument("--batch-clients", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--proof-requests", type=int, default=300, help="per kind and round")
    p.add_argument("--proof-rounds", type=int, default=3)
    p.add_argument("--cp-writers", type=int, default=4)
    p.add_argument("--cp-batch", type=int, default=500)
    p.add_argument("--cp-seconds", type=float, help="default 30; quick 10")
    p.add_argument("--cp-poll", type=float, default=0.01)
    p.add_argument(
        "--cp-interval",
        type=float,
        help="TRAILKEEP_CHECKPOINT_INTERVAL of the coverage server (default: the server's, 1 s)",
    )
    p.add_argument("--verify-runs", type=int, help="default 3; quick 2")
    p.add_argument("--floor", help="path to floor.py (default ../shared/bench/floor.py)")
    p.add_argument("--tmp", help="parent of the temp directory (default: system temp)")
    args = p.parse_args(argv)
    quick = args.quick
    args.events = args.events or (100_000 if quick else 1_000_000)
    args.per_other = args.per_other or args.events // 10
    args.ingest_events = args.ingest_events or (30_000 if quick else 100_000)
    args.repeats = args.repeats or (2 if quick else 3)
    args.cp_seconds = args.cp_seconds or (10.0 if quick else 30.0)
    args.verify_runs = args.verify_runs or (2 if quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(Bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

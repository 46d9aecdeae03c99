"""Batched ingest on PostgreSQL through two trailkeep processes, against a raw COPY of its rows.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/postgres_ingest.py                 # ~1 min
    .venv/bin/python benchmarks/postgres_ingest.py --seconds 30 --batch-clients 6
    .venv/bin/python benchmarks/postgres_ingest.py --database postgresql://USER@HOST/EMPTYDB

What it does, in order:

1. a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` on a loopback port, ``fsync`` on, as
   in production), unless ``--database`` names an existing, empty database;
2. two tenants with keys, made with the ``trailkeep`` CLI, and two ``trailkeep serve`` processes
   on that one database and one signing key file (as behind a load balancer);
3. batched ingest: client processes spread over both servers and both tenants, 500-event
   batches, for ``--seconds``; then, unless ``--single-seconds 0``, one event per request;
4. the floor: the very rows the servers wrote (events and tree nodes) read back and written
   again with ``COPY ... (FORMAT BINARY)`` into empty tables with the same indexes, by one
   connection in 5,000-event transactions — what PostgreSQL alone costs for them;
5. a check that every tenant's log is gap-free and its tree head covers it.

Prints events/s, request latency, CPU per process group, and the ratio to the raw COPY.
The ingest target is 20,000 events/s batched; it is printed as MET or MISSED.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from _main import run_benchmark

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.pg starts PostgreSQL

from tests.pg import PostgresServer

from _clients import LoadResult, WorkerSpec, run_load
from _profile import Sampler, hot_spots
from _queries import percentiles
from _server import Keys, Server
from _workload import utc_now
from trailkeep.storage.rows import EVENT_COLUMNS

TARGET_BATCH = 20_000.0
TENANTS = ("acme", "globex")
_FLOOR_CHUNK = 5_000
#: The events columns the store writes: the shared row, then the full-text document.
_EVENT_COLUMNS = (*EVENT_COLUMNS, "search_message", "search_fields")
_EVENT_TYPES = [
    {"seq": "int8", "body": "bytea", "salts": "bytea", "leaf_hash": "bytea"}.get(c, "text")
    for c in _EVENT_COLUMNS
]
_NODE_COLUMNS = ("tenant_id", "level", "idx", "hash")
_NODE_TYPES = ["text", "int2", "int8", "bytea"]


@dataclass(slots=True)
class PgServer(Server):
    """A ``trailkeep serve`` process on a PostgreSQL database instead of a SQLite file."""

    url_of_database: str = ""

    @property
    def database(self) -> str:
        return self.url_of_database


def _proc_cpu(pid: int) -> float:
    """User + system CPU of a process and of its children, live and reaped."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        this = int(stat.parent.name)
        if this == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
            if this == pid:
                total += (int(fields[13]) + int(fields[14])) / tick
    return total


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="trailkeep-pgbench-", dir=args.tmp))
        self.cluster: PostgresServer | None = None
        self.servers: list[PgServer] = []
        self.postmaster: int | None = None

    def database(self) -> str:
        if self.args.database:
            return str(self.args.database)
        print("starting a throwaway PostgreSQL cluster (fsync on)")
        self.cluster = PostgresServer.start_new(durable=True)
        pid_file = self.cluster.datadir / "postmaster.pid"
        self.postmaster = int(pid_file.read_text().split()[0])
        return self.cluster.create_database("bench")

    def start_servers(self, url: str) -> list[Keys]:
        env = {"TRAILKEEP_WORKERS_LOG_LEVEL": "warning"}
        self.servers = [PgServer(self.root, env, url_of_database=url) for _ in range(2)]
        keys = [self.servers[0].provision(tenant) for tenant in TENANTS]
        for server in self.servers:
            server.start()
            print(f"server pid {server.pid} at {server.url}")
        return keys

    def cpu(self) -> dict[str, float]:
        out = {"servers": sum(s.cpu_seconds() for s in self.servers)}
        if self.postmaster is not None:
            out["postgres"] = _proc_cpu(self.postmaster)
        return out

    def load(self, label: str, specs: list[WorkerSpec], profile: str) -> LoadResult:
        cpu: dict[str, dict[str, float]] = {}
        sampler = None
        if self.args.profile:
            Path(self.args.profile).mkdir(parents=True, exist_ok=True)
            sampler = Sampler(self.servers[0].pid, Path(self.args.profile) / f"{profile}.txt")

        def on_start() -> None:
            if sampler:
                sampler.start()
            cpu["start"] = self.cpu()

        def on_end() -> None:
            cpu["end"] = self.cpu()
            if sampler:
                sampler.stop()

        result = run_load(specs, on_start, on_end)
        lat = percentiles(result.latencies)
        print(
            f"{label}: {result.events:,} events, {result.requests:,} requests in"
            f" {result.seconds:.2f} s = {result.events_per_second:,.0f} events/s"
        )
        print(
            f"  request latency ms p50 {lat['p50'] * 1e3:.1f}  p95 {lat['p95'] * 1e3:.1f}"
            f"  p99 {lat['p99'] * 1e3:.1f}; errors {result.errors}"
            + (f" (first: {result.first_error})" if result.first_error else "")
        )
        used = {k: (cpu["end"][k] - cpu["start"][k]) / result.seconds for k in cpu["end"]}
        used["clients"] = result.client_cpu / result.seconds
        print("  CPU cores: " + ", ".join(f"{k} {v:.2f}" for k, v in used.items()))
        if sampler:
            print(f"  py-spy profile of the first server ({sampler.output}):")
            print(hot_spots(sampler.output, top=self.args.profile_top))
        return result

    def batched(self, keys: list[Keys]) -> LoadResult:
        a = self.args
        now = utc_now()
        per_worker = math.ceil(a.batch_events / (a.batch_clients * a.batch_size))
        specs = [
            WorkerSpec(
                "batch",
                self.servers[w % 2].url,
                keys[(w // 2) % 2].writer,
                100 + w,
                now,
                per_worker,
                a.seconds,
                batch_size=a.batch_size,
                pool=a.pool,
            )
            for w in range(a.batch_clients)
        ]
        label = (
            f"batched ingest ({a.batch_clients} clients x {a.batch_size}/batch,"
            f" 2 servers, {len(TENANTS)} tenants)"
        )
        return self.load(label, specs, "batched")

    def single(self, keys: list[Keys]) -> LoadResult:
        a = self.args
        now = utc_now()
        specs = [
            WorkerSpec(
                "single",
                self.servers[w % 2].url,
                keys[w % 2].writer,
                200 + w,
                now,
                1_000_000,
                a.single_seconds,
                concurrency=a.single_concurrency,
            )
            for w in range(2)
        ]
        label = f"single-event ingest ({2 * a.single_concurrency} concurrent, 2 servers)"
        return self.load(label, specs, "single")

    def floor(self, url: str) -> float:
        """Events/s of COPYing the stored rows (events + tree nodes) into fresh indexed tables."""
        with psycopg.connect(url) as conn:
            for table in ("events", "tree_nodes"):
                conn.execute(f"DROP TABLE IF EXISTS {table}_floor".encode())
                conn.execute(f"CREATE TABLE {table}_floor (LIKE {table} INCLUDING ALL)".encode())
            conn.commit()
            cols = ", ".join(_EVENT_COLUMNS)
            per_tenant = self.args.floor_events // len(TENANTS)
            events = conn.execute(
                f"SELECT {cols} FROM events WHERE seq < %s ORDER BY tenant_id, seq".encode(),
                (per_tenant,),
            ).fetchall()
            # The nodes those events complete: subtrees lying wholly below seq per_tenant.
            nodes = conn.execute(
                "SELECT tenant_id, level, idx, hash FROM tree_nodes"
                " WHERE (idx + 1) * (1::bigint << level) <= %s ORDER BY tenant_id, idx, level",
                (per_tenant,),
            ).fetchall()
            conn.commit()
            started = time.perf_counter()
            per_event = len(nodes) / max(len(events), 1)
            for i in range(0, len(events), _FLOOR_CHUNK):
                chunk_nodes = nodes[int(i * per_event) : int((i + _FLOOR_CHUNK) * per_event)]
                with conn.cursor() as cur:
                    chunk = events[i : i + _FLOOR_CHUNK]
                    _copy(cur, "events_floor", _EVENT_COLUMNS, _EVENT_TYPES, chunk)
                    _copy(cur, "tree_nodes_floor", _NODE_COLUMNS, _NODE_TYPES, chunk_nodes)
                conn.commit()
            seconds = time.perf_counter() - started
        rate = len(events) / seconds
        print(
            f"raw COPY of the same rows: {len(events):,} events + {len(nodes):,} tree nodes"
            f" in {seconds:.2f} s = {rate:,.0f} events/s (one connection,"
            f" {_FLOOR_CHUNK:,}-event transactions)"
        )
        return rate

    def check(self, url: str) -> None:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT h.tenant_id, h.size, count(e.seq), coalesce(max(e.seq) + 1, 0)"
                " FROM tree_heads h LEFT JOIN events e USING (tenant_id) GROUP BY h.tenant_id,"
                " h.size ORDER BY 1"
            ).fetchall()
        for tenant, size, count, top in rows:
            ok = size == count == top
            print(f"  {tenant}: head size {size:,}, {count:,} events, seqs 0..{top - 1:,}"
                  f" {'gap-free' if ok else 'INCONSISTENT'}")  # fmt: skip
            if not ok:
                raise RuntimeError(f"tenant {tenant} is not gap-free")

    def run(self) -> None:
        url = self.database()
        keys = self.start_servers(url)
        batched = self.batched(keys)
        single = self.single(keys) if self.args.single_seconds > 0 else None
        for server in self.servers:
            server.stop()
        floor = self.floor(url)
        print("consistency:")
        self.check(url)
        rate = batched.events_per_second
        status = "MET" if rate >= TARGET_BATCH else "MISSED"
        print("\nsummary")
        print(f"  batched ingest, 2 processes  {rate:>9,.0f} events/s  target"
              f" >= {TARGET_BATCH:,.0f}/s {status}  = {rate / floor:.2f}x raw COPY")  # fmt: skip
        if single is not None:
            s = single.events_per_second
            print(f"  single-event ingest          {s:>9,.0f} events/s"
                  f"                          = {s / floor:.2f}x raw COPY")  # fmt: skip
        print(f"  raw COPY of the same rows    {floor:>9,.0f} events/s")

    def cleanup(self) -> None:
        for server in self.servers:
            server.stop()
        if self.args.keep:
            print(f"kept {self.root} (server logs)")
            if self.cluster is not None:
                print(f"kept the cluster at {self.cluster.root} (port {self.cluster.port})")
            return
        shutil.rmtree(self.root, ignore_errors=True)
        if self.cluster is not None:
            self.cluster.destroy()


def _copy(
    cur: psycopg.Cursor[Any],
    table: str,
    columns: tuple[str, ...],
    types: list[str],
    rows: list[tuple[Any, ...]],
) -> None:
    if not rows:
        return
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)".encode()) as cp:
        cp.set_types(types)
        write: Callable[[Any], None] = cp.write_row
        for row in rows:
            write(row)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--database", help="an existing, empty PostgreSQL database URL")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the batched run")
    p.add_argument("--batch-events", type=int, default=2_000_000, help="most events batched")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--batch-clients", type=int, default=4)
    p.add_argument("--pool", type=int, default=8, help="distinct batch bodies per client")
    p.add_argument("--single-seconds", type=float, default=8.0, help="0 skips the step")
    p.add_argument("--single-concurrency", type=int, default=16, help="per client process")
    p.add_argument("--floor-events", type=int, default=200_000, help="rows in the raw COPY")
    p.add_argument("--profile", metavar="DIR", help="py-spy the first server during each step")
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument("--tmp", help="parent of the temp directory (default: system temp)")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the server logs and the throwaway cluster (left running)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(Bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())

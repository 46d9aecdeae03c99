"""The writer alone: events/s and CPU µs/event through ``Store.append``, in-process, no HTTP.

    .venv/bin/python benchmarks/writer.py [--quick] [--against REF] [--postgres] [--rounds N]

Each measurement runs in a fresh child process on a fresh database (SQLite ``synchronous=FULL``
in a temporary directory; with ``--postgres``, also a new database on a throwaway durable
cluster), with the events prepared (salts, commitments, ids) before the clock starts, so only
the writer is timed: sequencing, both trees, rows, full text, rollups, the commit. Shapes:

* ``batched``: 500-event appends, 4 outstanding at a time (4 batch clients), groups of up to
  the writer's bound;
* ``single``: one event per append, 32 outstanding (32 concurrent clients): the fixed cost of
  a job and of a group;
* ``replays``: 500-event appends where every event carries an idempotency key and one in
  five re-sends a key an earlier append stored (the idempotent-replay path).

CPU is the child process's (``time.process_time``: the writer thread plus the thread that
submits and waits, which is idle). On PostgreSQL the server's own CPU is not in it.

``--against REF`` also runs the same shapes on the source tree of git ``REF`` (extracted to a
temporary directory with ``git archive``), alternating with the working tree round by round,
and prints the ratio: a refactoring of the writer should cost nothing. Note the machine's load
(``uptime``) with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHAPES = {  # name: (events per append, appends outstanding, replayed share)
    "batched": (500, 4, 0.0),
    "single": (1, 32, 0.0),
    "replays": (500, 4, 0.2),
}


def _contents(count: int, keyed: bool, replayed: float, salt: str) -> list[dict[str, Any]]:
    """Audit events like the ingest benchmarks' (8 metadata fields)."""
    out: list[dict[str, Any]] = []
    fresh = 0
    for i in range(count):
        content: dict[str, Any] = {
            "actor": {"id": f"user-{i % 100}", "type": "user"},
            "action": ("document.update", "document.read", "login.success")[i % 3],
            "target": {"id": f"doc-{i % 1000}", "type": "document"},
            "metadata": {f"field{k}": f"value {i} {k}" for k in range(8)},
        }
        if keyed:
            if replayed and fresh > 500 and i % round(1 / replayed) == 0:
                content["idempotency_key"] = f"{salt}-{(i * 7919) % (fresh - 500)}"
            else:
                content["idempotency_key"] = f"{salt}-{fresh}"
                fresh += 1
        out.append(content)
    return out


def child(args: argparse.Namespace) -> None:
    """One shape on one fresh database, with the trailkeep at ``args.src``; prints JSON."""
    sys.path.insert(0, args.src)
    from trailkeep.model.ids import new_event_ids
    from trailkeep.service.events import EventService, Limits, SaltPool
    from trailkeep.service.stores import open_store
    from trailkeep.service.tenants import TenantService

    per_job, window, replayed = SHAPES[args.shape]
    store = open_store(args.url)
    TenantService(store).create_tenant("acme")
    service = EventService(store, Limits())
    contents = _contents(args.events, args.shape == "replays", replayed, "k")
    jobs = []
    for at in range(0, len(contents), per_job):
        batch = contents[at : at + per_job]
        ids = new_event_ids(len(batch))
        pool = SaltPool(len(batch))
        jobs.append([service.prepare(c, index=i, salt_pool=pool, event_id=ids[i])
                     for i, c in enumerate(batch)])  # fmt: skip
    store.append("acme", jobs[0]).result()  # the writer thread is up, the tenant's pages warm
    jobs = jobs[1:]
    events = sum(len(j) for j in jobs)
    replays = 0
    cpu, wall = time.process_time(), time.perf_counter()
    outstanding = [store.append("acme", job) for job in jobs[:window]]
    for job in jobs[window:]:
        replays += sum(a.replayed for a in outstanding.pop(0).result())
        outstanding.append(store.append("acme", job))
    for future in outstanding:
        replays += sum(a.replayed for a in future.result())
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    size = store.tree_head("acme").size
    store.close()
    if size != per_job + events - replays:  # the first append, then every new event
        raise RuntimeError(f"tree size {size}, expected {per_job + events - replays}")
    print(json.dumps({"events": events, "wall": wall, "cpu": cpu, "replays": replays,
                      "size": size}))  # fmt: skip


def _run_child(src: str, shape: str, url: str, events: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--src",
            src,
            "--shape",
            shape,
            "--url",
            url,
            "--events",
            str(events),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AXONFLOW_TELEMETRY": "off"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{shape} on {src} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _extract(ref: str, into: Path) -> str:
    """``src/`` of git ``ref``, with this tree's built C module copied in (it is git-ignored)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for built in (ROOT / "src/trailkeep/model").glob("_fastleaf*.so"):
        shutil.copy2(built, into / "src/trailkeep/model" / built.name)
    return str(into / "src")


def _load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()  # noqa: UP031


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="20,000 events a shape, 3 rounds")
    p.add_argument("--events", type=int, help="events per batched shape (default 100,000)")
    p.add_argument("--rounds", type=int, help="alternating rounds (default 5; 3 with --quick)")
    p.add_argument("--against", metavar="REF", help="also run git REF's src/, alternating")
    p.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL")
    p.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--src", default=str(ROOT / "src"), help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    events = args.events or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (3 if args.quick else 5)
    shapes = [s for s in args.shapes.split(",") if s]
    tmp = Path(tempfile.mkdtemp(prefix="trailkeep-writer-"))
    variants = {"this tree": str(ROOT / "src")}
    cluster = None
    try:
        if args.against:
            (tmp / "ref").mkdir()
            variants[args.against] = _extract(args.against, tmp / "ref")
        backends: dict[str, Any] = {"sqlite": None}
        if args.postgres:
            sys.path.insert(0, str(ROOT))
            from tests.pg import PostgresServer

            cluster = PostgresServer.start_new(durable=True)
            backends["postgres"] = cluster
        results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        print(f"{events:,} events a batched shape ({events // 5:,} single), {rounds} rounds;"
              f" {_load()}")  # fmt: skip
        for r in range(rounds):
            for backend, server in backends.items():
                for shape in shapes:
                    for name, src in variants.items():
                        if server is None:
                            url = f"sqlite:///{tmp / f'{r}-{shape}-{len(results)}.db'}"
                        else:
                            url = server.create_database("writer")
                        n = events // 5 if shape == "single" else events
                        out = _run_child(src, shape, url, n)
                        results.setdefault((backend, shape, name), []).append(out)
                        print(f"  round {r + 1} {backend:8s} {shape:8s} {name:12s}"
                              f" {out['events'] / out['wall']:>9,.0f} ev/s"
                              f" {out['cpu'] / out['events'] * 1e6:7.1f} µs CPU/event"
                              f" ({out['replays']} replays; {_load()})", flush=True)  # fmt: skip
                        if server is None:
                            for f in tmp.glob("*.db*"):
                                f.unlink()
        print(f"medians ({_load()}):")
        for backend in backends:
            for shape in shapes:
                rates = {}
                for name in variants:
                    runs = results[(backend, shape, name)]
                    rate = statistics.median(o["events"] / o["wall"] for o in runs)
                    cpu = statistics.median(o["cpu"] / o["events"] * 1e6 for o in runs)
                    rates[name] = (rate, cpu)
                    print(f"  {backend:8s} {shape:8s} {name:12s} {rate:>9,.0f} ev/s"
                          f" {cpu:7.1f} µs CPU/event")  # fmt: skip
                if args.against:
                    (new_rate, new_cpu), (old_rate, old_cpu) = rates.values()
                    print(f"  {backend:8s} {shape:8s} {'ratio':12s} {new_rate / old_rate:9.3f}"
                          f" x rate, {new_cpu / old_cpu:.3f} x CPU/event"
                          f" (this tree / {args.against})")  # fmt: skip
    finally:
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

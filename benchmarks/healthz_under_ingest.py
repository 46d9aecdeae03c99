"""Does a full batch stall the server? ``/healthz`` latency while max-size batches are ingested.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/healthz_under_ingest.py [--seconds 20] [--writers 2]

A real ``trailkeep serve`` (fresh SQLite file, ``synchronous=FULL``); ``--writers`` threads
post the largest batch the default limits accept (1,000 events x 750 metadata keys, just under
8 MiB, each event under 64 KiB) back to back, while a probe requests ``GET /healthz`` every
``--interval`` seconds on its own connection. It prints the probe's latency percentiles, idle
first (no ingest) and then under ingest, and the batches' throughput. Target: p99 <= 100 ms
under ingest (issue 14, item 6: before, one such batch held the event loop for 3-4 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _main import run_benchmark
from _server import Server

TARGET_P99_MS = 100.0
MAX_BODY = 8 * 1024 * 1024
EVENTS = 1000
KEYS = 750


def max_batch() -> bytes:
    """1,000 events of 750 metadata keys each, padded to just under the 8 MiB body limit."""

    def body(pad: int) -> bytes:
        events = [
            {
                "action": "bulk.import",
                "actor": {"id": f"u-{i}"},
                "message": "m" * pad,
                "metadata": {f"k{k:03d}": (i + k) % 10 for k in range(KEYS)},
            }
            for i in range(EVENTS)
        ]
        return orjson.dumps({"events": events})

    base = len(body(0))
    if base > MAX_BODY:
        raise RuntimeError(f"the unpadded batch is {base:,} bytes, over {MAX_BODY:,}")
    return body((MAX_BODY - base) // EVENTS - 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def probe(url: str, seconds: float, interval: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            http.get("/healthz").raise_for_status()
            latencies.append(time.perf_counter() - t0)
            time.sleep(max(0.0, interval - (time.perf_counter() - t0)))
    return latencies


def report(name: str, latencies: list[float]) -> float:
    p99 = percentile(latencies, 0.99) * 1e3
    print(
        f"  {name}: {len(latencies)} probes; p50 {percentile(latencies, 0.5) * 1e3:.1f} ms,"
        f" p95 {percentile(latencies, 0.95) * 1e3:.1f} ms, p99 {p99:.1f} ms,"
        f" max {max(latencies) * 1e3:.1f} ms, mean {statistics.mean(latencies) * 1e3:.1f} ms"
    )
    return p99


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="trailkeep-healthz-"))
        self.server = Server(self.root / "server")

    def run(self) -> None:
        a = self.args
        keys = self.server.provision()
        self.server.start()
        body = max_batch()
        print(
            f"server pid {self.server.pid}; batch {len(body):,} bytes ({EVENTS} events x {KEYS}"
            f" metadata keys); {a.writers} writer(s); probe every {a.interval * 1e3:.0f} ms"
        )
        report("idle", probe(self.server.url, min(a.seconds, 5.0), a.interval))
        stop = threading.Event()
        done: list[float] = []
        errors: list[str] = []

        def write() -> None:
            headers = {"Authorization": f"Bearer {keys.writer}", "Content-Type": "application/json"}
            with httpx.Client(base_url=self.server.url, timeout=120) as http:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    resp = http.post("/v1/events/batch", content=body, headers=headers)
                    if resp.status_code != 201:
                        errors.append(f"{resp.status_code} {resp.text[:200]}")
                        return
                    done.append(time.perf_counter() - t0)

        writers = [threading.Thread(target=write, daemon=True) for _ in range(a.writers)]
        for t in writers:
            t.start()
        time.sleep(1.0)  # the first batches are in flight
        latencies = probe(self.server.url, a.seconds, a.interval)
        stop.set()
        for t in writers:
            t.join(timeout=300)
        if errors:
            raise RuntimeError(f"ingest failed: {errors[0]}")
        p99 = report("under ingest", latencies)
        print(
            f"  ingest: {len(done)} batches = {len(done) * EVENTS:,} events; batch latency"
            f" median {statistics.median(done):.2f} s, max {max(done):.2f} s"
        )
        verdict = "MET" if p99 <= TARGET_P99_MS else "MISSED"
        print(
            f"/healthz p99 under ingest {p99:.1f} ms; target <= {TARGET_P99_MS:.0f} ms: {verdict}"
        )

    def cleanup(self) -> None:
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="probing time under ingest")
    p.add_argument("--writers", type=int, default=2, help="threads posting batches")
    p.add_argument("--interval", type=float, default=0.02, help="seconds between probes")
    return run_benchmark(Bench(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())

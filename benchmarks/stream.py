"""Live-stream latency of a real trailkeep server: published → delivered, p50/p95/p99.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/stream.py                 # ~30 s
    .venv/bin/python benchmarks/stream.py --events 5000 --subscribers 20

What it does:

1. a fresh SQLite database (durable: ``synchronous=FULL``), a tenant and keys made with the
   ``trailkeep`` CLI, and ``trailkeep serve`` on a free loopback port;
2. ``--subscribers`` SDK clients follow ``GET /v1/stream`` (filtered on this run's action);
   warm-up events are published until every one of them has received one;
3. scenarios, each measured separately:
   - *steady*: one publisher writes single events (``POST /v1/events``) at ``--rate`` per second;
   - *burst*: batches of ``--burst`` events (``POST /v1/events/batch``) every 100 ms;
4. for every (event, subscriber) it records two latencies, on one monotonic clock:
   *send → deliver* (from just before the publisher sends the request: ingest, durable commit,
   wake-up, read, SSE and parsing) and *ack → deliver* (from the moment the publisher has the
   201: what a reader waits beyond the writer's own acknowledgement);
5. with ``--workers 2`` a second server runs two worker processes, where a stream lives in
   one process and the publisher's request often lands in the other: those events are found by
   the poll (``TRAILKEEP_STREAM_POLL_INTERVAL``), not by the in-process wake-up.

The target (p99 send → deliver ≤ 250 ms) is printed as MET or MISSED. Every delivery is also
checked: each subscriber must receive every event exactly once, in publication order.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _queries import percentiles
from _server import Server
from trailkeep.client import AuditError, Client

TARGET_P99_MS = 250.0


@dataclass
class Run:
    """One scenario: what was published when, and what each subscriber received when.

    Attributes:
        key: carried in each event's ``metadata.run``, to tell scenarios (and warm-up) apart.
        received: per subscriber, ``(i, monotonic time)`` in arrival order.
    """

    key: str
    action: str
    subscribers: int
    sent: dict[int, float] = field(default_factory=dict)
    acked: dict[int, float] = field(default_factory=dict)
    received: list[list[tuple[int, float]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.received = [[] for _ in range(self.subscribers)]

    def body(self, i: int) -> dict[str, Any]:
        return {"action": self.action, "metadata": {"run": self.key, "i": i}}


Publish = Callable[[Client, Run, int], None]


class Subscribers:
    """``count`` threads, each following the stream with its own SDK client."""

    def __init__(self, url: str, token: str, count: int, action: str) -> None:
        self.url, self.token, self.action, self.count = url, token, action, count
        self.warm = [threading.Event() for _ in range(count)]
        self.runs: dict[str, Run] = {}
        self.stopping = False  # the server is going away: connection errors are expected
        self.threads = [
            threading.Thread(target=self._follow, args=(k,), daemon=True) for k in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def _follow(self, k: int) -> None:
        try:
            with Client(self.url, token=self.token) as client:
                for event in client.stream(action=self.action, timeout=3600):
                    now = time.monotonic()
                    meta = event.get("metadata") or {}
                    run = self.runs.get(meta.get("run", ""))
                    if run is None:
                        self.warm[k].set()
                    else:
                        run.received[k].append((meta["i"], now))
        except AuditError:
            if not self.stopping:
                raise

    def wait_warm(self, publisher: Client, timeout: float = 30) -> None:
        """Publish warm-up events until every subscriber has received one: all are live."""
        deadline = time.monotonic() + timeout
        while not all(w.is_set() for w in self.warm):
            if time.monotonic() > deadline:
                raise RuntimeError("subscribers did not connect")
            publisher.log(action=self.action, metadata={"warmup": True})
            time.sleep(0.1)


def steady(rate: float) -> Publish:
    """Single events (POST /v1/events) at ``rate`` per second."""

    def go(client: Client, run: Run, events: int) -> None:
        start = time.monotonic()
        for i in range(events):
            time.sleep(max(start + i / rate - time.monotonic(), 0.0))
            run.sent[i] = time.monotonic()
            client.log(run.body(i))
            run.acked[i] = time.monotonic()

    return go


def burst(size: int) -> Publish:
    """Batches of ``size`` events (POST /v1/events/batch) every 100 ms."""

    def go(client: Client, run: Run, events: int) -> None:
        for first in range(0, events, size):
            batch = range(first, min(first + size, events))
            now = time.monotonic()
            run.sent.update(dict.fromkeys(batch, now))
            client.log_bulk([run.body(i) for i in batch])
            now = time.monotonic()
            run.acked.update(dict.fromkeys(batch, now))
            time.sleep(0.1)

    return go


def measure(
    subs: Subscribers, publisher: Client, name: str, events: int, publish: Publish
) -> dict[str, Any]:
    run = Run(f"{name}-{uuid.uuid4().hex[:6]}", subs.action, subs.count)
    subs.runs[run.key] = run
    started = time.monotonic()
    publish(publisher, run, events)
    deadline = time.monotonic() + 30
    while any(len(r) < events for r in run.received) and time.monotonic() < deadline:
        time.sleep(0.02)
    send = [t - run.sent[i] for got in run.received for i, t in got]
    ack = [t - run.acked[i] for got in run.received for i, t in got]
    complete = all([i for i, _ in got] == list(range(events)) for got in run.received)
    return {"send": send, "ack": ack, "complete": complete,
            "seconds": time.monotonic() - started}  # fmt: skip


def report(label: str, result: dict[str, Any], subscribers: int) -> bool:
    send = percentiles(result["send"])
    ack = percentiles(result["ack"])
    met = send["p99"] * 1000 <= TARGET_P99_MS and result["complete"]
    print(
        f"\n{label}: {len(result['send'])} deliveries ({subscribers} subscribers) in"
        f" {result['seconds']:.1f} s; every event exactly once, in order: {result['complete']}"
    )
    for name, key, p in (("send → deliver", "send", send), ("ack → deliver", "ack", ack)):
        print(
            f"  {name:15} p50 {p['p50'] * 1000:7.1f} ms   p95 {p['p95'] * 1000:7.1f} ms"
            f"   p99 {p['p99'] * 1000:7.1f} ms   max {max(result[key]) * 1000:7.1f} ms"
        )
    print(f"  target p99 send → deliver <= {TARGET_P99_MS:.0f} ms: {'MET' if met else 'MISSED'}")
    return met


def bench(root: Path, args: argparse.Namespace, workers: int) -> None:
    env = {"TRAILKEEP_WORKERS": str(workers)} if workers > 1 else {}
    server = Server(root / f"workers-{workers}", env)
    try:
        keys = server.provision()
        server.start()
        print(f"\nserver: {workers} worker(s) at {server.url} (pid {server.pid})")
        action = f"bench.{uuid.uuid4().hex[:8]}"
        subs = Subscribers(server.url, keys.reader, args.subscribers, action)
        with Client(server.url, token=keys.writer) as publisher:
            subs.wait_warm(publisher)
            scenarios = [
                (f"steady {args.rate:.0f} events/s", steady(args.rate)),
                (f"burst {args.burst} events / 100 ms", burst(args.burst)),
            ]
            for label, publish in scenarios:
                result = measure(subs, publisher, label, args.events, publish)
                report(f"[{workers} worker(s)] {label}", result, args.subscribers)
            subs.stopping = True
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per scenario")
    parser.add_argument("--rate", type=float, default=200.0, help="steady events per second")
    parser.add_argument("--burst", type=int, default=100, help="events per burst batch")
    parser.add_argument("--subscribers", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, choices=(1, 2),
                        help="2 also measures a two-process server (polled path)")  # fmt: skip
    parser.add_argument("--tmp", default=None, help="directory for the temp files")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="trailkeep-stream-", dir=args.tmp))
    try:
        bench(root, args, 1)
        if args.workers == 2:
            bench(root, args, 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pangea's ``search(verify_events=True)`` of 1,000 results, through the real SDK: p50/p95.

Run with the project's virtualenv (``pangea-sdk`` from the ``compat`` extra)::

    .venv/bin/python benchmarks/pangea_search.py --quick    # 20 searches
    .venv/bin/python benchmarks/pangea_search.py            # 100 searches

A fresh ``trailkeep serve`` on loopback; ``--events`` events written through ``/pangea/v2/log``
(the SDK's ``log_bulk``), half as many natively; then ``Audit.search(query="", limit=1000,
max_results=1000, verify_events=True, verify_consistency=True)`` timed end to end on the
client (request, server, and the SDK's hash and membership checks of every event), and the
same with ``verify_events=False, verify_consistency=False`` as the floor of the round trip.
Target: p95 of the verified search <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pangea import PangeaConfig
from pangea.services import Audit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import Server

TARGET_P95 = 1.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _seed(server: Server, token: str, writer: str, events: int) -> None:
    audit = Audit(token, config=PangeaConfig(base_url_template=f"{server.url}/pangea"))
    for start in range(0, events, 500):
        batch = [{"message": f"m{i}", "actor": f"u{i % 17}"} for i in range(start, start + 500)]
        audit.log_bulk(batch[: max(0, min(500, events - start))])
    native = [{"action": "login", "actor": {"id": f"n{i}"}} for i in range(events // 2)]
    for start in range(0, len(native), 500):
        httpx.post(
            f"{server.url}/v1/events/batch",
            json={"events": native[start : start + 500]},
            headers={"Authorization": f"Bearer {writer}"},
            timeout=60,
        ).raise_for_status()


def _time(audit: Audit, runs: int, verify: bool) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        got = audit.search(
            query="",
            limit=1000,
            max_results=1000,
            verify_events=verify,
            verify_consistency=verify,
        )
        out.append(time.perf_counter() - started)
        assert len(got.result.events) == 1000
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="20 searches of each kind")
    p.add_argument("--events", type=int, default=2000, help="events written through Pangea")
    p.add_argument("--runs", type=int, help="searches of each kind (default 100; quick 20)")
    args = p.parse_args(argv)
    runs = args.runs or (20 if args.quick else 100)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        keys = server.provision()
        admin = server._cli("keys", "create", "--tenant", keys.tenant, "--role", "admin", "--json")
        token = json.loads(admin)["token"]
        server.start()
        try:
            _seed(server, token, keys.writer, args.events)
            audit = Audit(token, config=PangeaConfig(base_url_template=f"{server.url}/pangea"))
            plain = _time(audit, runs, verify=False)
            verified = _time(audit, runs, verify=True)
        finally:
            server.stop()
    for name, values in (("unverified", plain), ("verify_events+consistency", verified)):
        print(
            f"search of 1,000, {name}: p50 {statistics.median(values) * 1000:.0f} ms,"
            f" p95 {_p(values, 0.95) * 1000:.0f} ms"
        )
    p95 = _p(verified, 0.95)
    print(f"target p95 <= {TARGET_P95 * 1000:.0f} ms: {'MET' if p95 <= TARGET_P95 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Crash safety: SIGKILL a real server under sustained ingest, many times, then prove that
every acknowledged event survived exactly once, seqs are gap-free, and every tenant's tree and
checkpoints verify.

    .venv/bin/python scripts/crash_test.py --kills 25 --writers 6

Only events answered with 201 count as acknowledged; unacknowledged ones may or may not be
stored (both are correct). Exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from trailkeep.api.services import Services
from trailkeep.client.verify import verify_checkpoints
from trailkeep.merkle import Verifier
from trailkeep.model.tenant import Role
from trailkeep.service.audit import audit_tenant
from trailkeep.settings import Settings

TENANTS = ("acme", "globex")
SERVER_NAME = "crash.trailkeep"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Acked:
    """Acknowledged events by tenant: event id → seq, as the server answered."""

    by_tenant: dict[str, dict[str, int]] = field(default_factory=lambda: {t: {} for t in TENANTS})
    duplicates: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    failures: int = 0

    def record(self, tenant: str, events: list[dict[str, object]]) -> None:
        with self.lock:
            known = self.by_tenant[tenant]
            for event in events:
                event_id, seq = str(event["id"]), event["seq"]
                assert isinstance(seq, int)
                if event_id in known:
                    self.duplicates.append(event_id)
                known[event_id] = seq


class Server:
    """``trailkeep serve`` on a fixed port and database, killed and restarted at will."""

    def __init__(self, workdir: Path) -> None:
        self.database = f"sqlite:///{workdir / 'crash.db'}"
        self.key = workdir / "signing.key"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (workdir / "server.log").open("ab")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.monotonic()
        argv = [sys.executable, "-m", "trailkeep", "serve", "--port", str(self.port),
                "--database", self.database, "--signing-key", str(self.key)]  # fmt: skip
        env = {
            **os.environ,
            "TRAILKEEP_SERVER_NAME": SERVER_NAME,
            "TRAILKEEP_CHECKPOINT_INTERVAL": "0.2",
        }
        self.process = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        while time.monotonic() - started < 30:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server not ready after 30 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()


def provision(database: str, key: Path) -> dict[str, str]:
    """A writer token per tenant (and the databases and key files) before the first start."""
    services = Services.build(Settings(database=database, signing_key=key, server_name=SERVER_NAME))
    try:
        tokens = {}
        for tenant in TENANTS:
            services.tenants.create_tenant(tenant)
            tokens[tenant] = services.tenants.create_key(tenant, Role.WRITER).token
        return tokens
    finally:
        services.close()


def writer(url: str, tenant: str, token: str, acked: Acked, stop: threading.Event, n: int) -> None:
    """Single events and batches, as fast as the server answers; only 201s are recorded."""
    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        i = 0
        while not stop.is_set():
            i += 1
            size = 1 if rng.random() < 0.5 else rng.randint(2, 50)
            events = [
                {"action": "crash.test", "actor": {"id": f"w{n}"}, "metadata": {"i": i, "j": j}}
                for j in range(size)
            ]
            try:
                if size == 1:
                    resp = client.post("/v1/events", json=events[0])
                    stored = [resp.json()] if resp.status_code == 201 else []
                else:
                    resp = client.post("/v1/events/batch", json={"events": events})
                    stored = resp.json()["events"] if resp.status_code == 201 else []
            except (httpx.TransportError, ValueError):
                with acked.lock:
                    acked.failures += 1
                time.sleep(0.02)
                continue
            with acked.lock:
                acked.requests += 1
            if resp.status_code == 201:
                acked.record(tenant, stored)
            else:
                with acked.lock:
                    acked.failures += 1


def verify(database: str, key: Path, public_key: str, acked: Acked) -> list[str]:
    """Every check of the end state; the problems found (empty: all good)."""
    problems: list[str] = [f"acknowledged twice: {d}" for d in acked.duplicates]
    services = Services.build(Settings(database=database, signing_key=key, server_name=SERVER_NAME))
    verifier = Verifier.parse(public_key.strip())
    try:
        store = services.store
        for tenant in TENANTS:
            size = store.log_size(tenant)
            stored = [e.event for e in store.scan_evidence(tenant, 0, size)]
            seqs = [e.seq for e in stored]
            if seqs != list(range(size)):
                problems.append(f"{tenant}: seqs are not 0..{size - 1} without gaps")
            where = {}
            for event in stored:
                if event.id in where:
                    problems.append(f"{tenant}: event {event.id} stored twice")
                where[event.id] = event.seq
            for event_id, seq in acked.by_tenant[tenant].items():
                if event_id not in where:
                    problems.append(f"{tenant}: acknowledged event {event_id} is lost")
                elif where[event_id] != seq:
                    problems.append(
                        f"{tenant}: {event_id} acked at seq {seq}, stored at {where[event_id]}"
                    )
            report = audit_tenant(store, tenant, verifier, f"{SERVER_NAME}/{tenant}")
            problems += [f"{tenant}: {p}" for p in report.problems]
            checkpoints = store.list_checkpoints(tenant)
            for old, new in itertools.pairwise(checkpoints):
                proof = services.log.consistency_proof(tenant, old.size, new.size)
                try:
                    verify_checkpoints(old.note, new.note, proof, verifier)
                except Exception as exc:
                    problems.append(f"{tenant}: checkpoints {old.size}→{new.size}: {exc}")
            print(
                f"  {tenant}: {size} stored, {len(acked.by_tenant[tenant])} acknowledged,"
                f" {len(checkpoints)} checkpoints, audit {'ok' if report.ok else 'FAILED'}"
            )
    finally:
        services.close()
    return problems


def run(kills: int, writers: int, min_gap: float, max_gap: float, seed: int) -> int:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="trailkeep-crash-") as tmp:
        server = Server(Path(tmp))
        tokens = provision(server.database, server.key)
        server.start()
        public_key = httpx.get(f"{server.url}/v1/log/key", timeout=5).text
        acked, stop = Acked(), threading.Event()
        threads = [
            threading.Thread(
                target=writer,
                args=(
                    server.url,
                    TENANTS[n % len(TENANTS)],
                    tokens[TENANTS[n % len(TENANTS)]],
                    acked,
                    stop,
                    n,
                ),
            )
            for n in range(writers)
        ]
        for thread in threads:
            thread.start()
        restarts = []
        started = time.monotonic()
        for k in range(kills):
            time.sleep(rng.uniform(min_gap, max_gap))
            server.kill()
            restarts.append(server.start())
            so_far = sum(map(len, acked.by_tenant.values()))
            print(f"kill {k + 1}/{kills}: acknowledged so far {so_far}")
        time.sleep(min_gap)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # let the last checkpoint be signed
        server.stop()
        total = sum(map(len, acked.by_tenant.values()))
        print(
            f"{kills} SIGKILLs in {elapsed:.1f} s; {acked.requests} requests answered,"
            f" {acked.failures} failed or refused; {total} events acknowledged;"
            f" restart median {sorted(restarts)[len(restarts) // 2]:.2f} s"
            if restarts
            else ""
        )
        problems = verify(server.database, server.key, public_key, acked)
        for problem in problems[:50]:
            print("PROBLEM", problem)
        print(
            "OK: every acknowledged event present exactly once; trees and checkpoints verify"
            if not problems
            else f"FAILED: {len(problems)} problems"
        )
        return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--writers", type=int, default=6, help="concurrent client threads")
    parser.add_argument("--min-gap", type=float, default=0.3, help="least seconds between kills")
    parser.add_argument("--max-gap", type=float, default=1.5, help="most seconds between kills")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.exit(run(args.kills, args.writers, args.min_gap, args.max_gap, args.seed))


if __name__ == "__main__":
    main()

"""Running a real ``trailkeep serve`` process for tests that need one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

TRAILKEEP = [sys.executable, "-m", "trailkeep"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli(*args: str, database: str, env: dict[str, str] | None = None) -> str:
    """Run a ``trailkeep`` command and return its standard output."""
    proc = subprocess.run(
        [*TRAILKEEP, *args, "--database", database],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@dataclass
class Server:
    url: str
    database: str
    process: subprocess.Popen[bytes]
    tokens: dict[str, str]
    log_path: Path

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} not ready after {timeout}s")


def provision(database: str, tenant: str, *, operator: bool = True) -> dict[str, str]:
    """Create a tenant with one key per role (and an operator key); return the tokens.

    The tenant and keys are seeded below the audited layer (``TenantService``), so the
    tenant's log starts empty, as the tests of ingest and reads expect; ``trailkeep tenants``
    and ``keys`` themselves, and the events they record, are tested in ``tests/cli``.
    """
    from trailkeep.model.tenant import Role
    from trailkeep.service.stores import open_store
    from trailkeep.service.tenants import TenantService

    cli("init", database=database)  # admin commands never create a database (issue 19)
    store = open_store(database)
    try:
        records = TenantService(store)
        records.create_tenant(tenant)
        tokens = {
            role: records.create_key(tenant, Role(role)).token
            for role in ("writer", "reader", "admin")
        }
        if operator:
            tokens["operator"] = records.create_key(None, Role.OPERATOR).token
    finally:
        store.close()
    return tokens


@contextmanager
def serving(
    database: str, signing_key: Path, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``trailkeep serve`` on a free port until the block ends; yield its URL and process."""
    port = free_port()
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            *TRAILKEEP,
            "serve",
            "--port",
            str(port),
            "--database",
            database,
            "--signing-key",
            str(signing_key),
        ],
        env={**os.environ, "AXONFLOW_TELEMETRY": "off", **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def running_server(
    workdir: Path, env: dict[str, str] | None = None, tenant: str = "acme"
) -> Iterator[Server]:
    """Create a tenant with one key per role, then serve the database until the block ends."""
    database = f"sqlite:///{workdir / 'trailkeep.db'}"
    tokens = provision(database, tenant)
    log_path = workdir / "server.log"
    with serving(database, workdir / "signing.key", log_path, env) as (url, process):
        yield Server(url, database, process, tokens, log_path)

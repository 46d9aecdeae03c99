"""A real ``trailkeep serve`` process, provisioned in-process: ``tests.process.running_server``
makes its tenant and keys through five CLI subprocesses (about a second each); modules that
only need a server to talk to use this instead and stay fast."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.process import TRAILKEEP, Server, free_port, wait_ready
from trailkeep.model.tenant import Role
from trailkeep.service.stores import open_store
from trailkeep.service.tenants import TenantService


@contextmanager
def fast_server(workdir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Tenant ``acme`` with one key per role (and an operator key), served until the end."""
    database = f"sqlite:///{workdir / 'trailkeep.db'}"
    store = open_store(database)
    try:
        tenants = TenantService(store)
        tenants.create_tenant("acme")
        tokens = {
            r: tenants.create_key("acme", Role(r)).token for r in ("writer", "reader", "admin")
        }
        tokens["operator"] = tenants.create_key(None, Role.OPERATOR).token
    finally:
        store.close()
    port = free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*TRAILKEEP, "serve", "--port", str(port), "--database", database,
             "--signing-key", str(workdir / "signing.key")],
            env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process)
            yield Server(url, database, process, tokens, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

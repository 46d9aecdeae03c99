"""A real ``trailkeep serve`` process on a fresh SQLite file and a free loopback port.

The server runs in its own session (process group), so a Ctrl-C at the terminal reaches the
benchmark, which then stops the server itself; :meth:`Server.stop` is idempotent and is called
from ``finally`` blocks. Tenants and keys are made with the real CLI, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

__all__ = ["Keys", "Server", "cli_path", "free_port"]

_HOST = "127.0.0.1"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0


def cli_path() -> str:
    """The ``trailkeep`` console script of the interpreter running this benchmark."""
    beside = Path(sys.executable).parent / "trailkeep"
    if beside.exists():
        return str(beside)
    raise RuntimeError(f"no trailkeep console script beside {sys.executable}; install the package")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_of(stat_file: Path) -> float:
    fields = stat_file.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Keys:
    tenant: str
    writer: str
    reader: str


def _descendants(pid: int) -> list[int]:
    """Every live descendant process of ``pid`` (from ``/proc/<pid>/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            todo += children
    return found


@dataclass(slots=True)
class Server:
    """One server process over one database file in ``workdir``.

    Args:
        workdir: a private directory for the database, signing key and server log.
        env: extra environment for the server (e.g. ``TRAILKEEP_CHECKPOINT_INTERVAL=0.2``).
        database_url: another database than ``workdir``'s SQLite file (e.g. PostgreSQL).
    """

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None
    database_url: str = ""

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.workdir / 'trailkeep.db'}"

    @property
    def db_path(self) -> Path:
        return self.workdir / "trailkeep.db"

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _cli(self, *args: str) -> str:
        done = subprocess.run(
            [cli_path(), *args, "--database", self.database],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"trailkeep {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def provision(self, tenant: str = "acme") -> Keys:
        """Create the tenant and a writer and a reader key through the CLI."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.database_url and not self.db_path.exists():  # admin commands never create one
            self._cli("init")
        self._cli("tenants", "create", tenant)
        tokens = {
            role: json.loads(self._cli("keys", "create", "--tenant", tenant, "--role", role,
                                       "--json"))["token"]
            for role in ("writer", "reader")
        }  # fmt: skip
        return Keys(tenant, tokens["writer"], tokens["reader"])

    def start(self) -> None:
        """Start ``trailkeep serve`` and wait until ``/healthz`` answers."""
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            self._log = open(self.workdir / f"server-{self.port}.log", "wb")  # noqa: SIM115
            env = {**os.environ, **self.env}
            self.process = subprocess.Popen(
                [cli_path(), "serve", "--host", _HOST, "--port", str(self.port),
                 "--database", self.database, "--signing-key", str(self.workdir / "signing.key")],
                stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
            if self._wait_healthy():
                return
            self.stop()
        raise RuntimeError(f"server did not start; see {self.workdir}/server-*.log")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        return False

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far: its process (all threads) and every
        live descendant (``TRAILKEEP_PREPARE_WORKERS``' processes, their fork server)."""
        total = _cpu_of(Path(f"/proc/{self.pid}/stat"))
        for child in _descendants(self.pid):
            try:
                total += _cpu_of(Path(f"/proc/{child}/stat"))
            except (OSError, ValueError):
                continue  # it ended while we looked
        return total

    def thread_cpu_seconds(self) -> dict[int, float]:
        """CPU used so far by each live thread of the server, by thread id."""
        out = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                out[int(task.name)] = _cpu_of(task / "stat")
            except (OSError, ValueError):
                continue  # the thread ended while we looked
        return out

    def context_switches(self) -> tuple[int, int]:
        """Voluntary and involuntary context switches so far, summed over live threads.

        Under batched ingest most voluntary ones are a thread blocking to retake the GIL: a
        rate far above one per batch and statement means threads hand the GIL back and forth.
        """
        vol = invol = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                status = (task / "status").read_text()
            except OSError:
                continue  # the thread ended while we looked
            for line in status.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol += int(line.split()[1])
        return vol, invol

    def stop(self) -> None:
        """Stop gracefully (SIGINT, as uvicorn expects), then kill; safe to call twice."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(_STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

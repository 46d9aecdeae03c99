"""Issue 14's reproduction with real ``trailkeep serve`` processes: a database restored from an
older backup (or with its tail deleted) never gets a second, different checkpoint of a size
already signed; it refuses writes, says why and how out, and only the operator's command
reopens it. ``verify database --checkpoint`` catches the perfect truncation."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg import PostgresServer
from tests.process import TRAILKEEP, provision, serving
from trailkeep.client.verify import verify_checkpoints
from trailkeep.merkle import Verifier, open_checkpoint
from trailkeep.service.signing import load_or_create_signer

ENV = {"TRAILKEEP_CHECKPOINT_INTERVAL": "0.2"}

pytestmark = pytest.mark.slow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """A ``trailkeep`` command, its exit code left to the caller."""
    env = {**os.environ, "AXONFLOW_TELEMETRY": "off", "COLUMNS": "400"}
    return subprocess.run(
        [*TRAILKEEP, *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )


@dataclass
class Log:
    """One tenant's log as a client sees it through one server."""

    url: str
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def ingest(self, tag: str, n: int) -> httpx.Response:
        body = {"events": [{"action": f"{tag}.{i}", "message": tag} for i in range(n)]}
        return httpx.post(f"{self.url}/v1/events/batch", json=body, headers=self.auth("writer"))

    def checkpoint(self) -> str:
        resp = httpx.get(f"{self.url}/v1/log/checkpoint", headers=self.auth("reader"))
        assert resp.status_code == 200, resp.text
        return resp.text

    def wait_for_checkpoint(self, size: int, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            note = self.checkpoint()
            if int(note.splitlines()[1]) >= size or time.monotonic() > deadline:
                assert int(note.splitlines()[1]) == size, note
                return note
            time.sleep(0.05)

    def events(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/v1/events?limit=100", headers=self.auth("reader"))
        assert resp.status_code == 200, resp.text
        events: list[dict[str, Any]] = resp.json()["events"]
        return events

    def key(self) -> Verifier:
        return Verifier.parse(httpx.get(f"{self.url}/v1/log/key").text.strip())


def _root(note: str) -> str:
    return note.splitlines()[2]


def assert_refused(resp: httpx.Response, signed_note: str, database_size: int) -> None:
    """409 LOG_FORKED naming both sizes, both roots and the way out."""
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "LOG_FORKED"
    message = error["message"]
    assert f"(size {database_size}, root " in message
    assert f"(size {signed_note.splitlines()[1]}, root {_root(signed_note)})" in message
    assert "trailkeep signer accept-database --tenant acme" in message


def wait_until_accepted(log: Log, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        resp = log.ingest("after", 2)
        if resp.status_code != 409 or time.monotonic() > deadline:
            return resp
        time.sleep(0.1)


def _sqlite_file(database: str) -> Path:
    return Path(database.removeprefix("sqlite:///"))


class TestRestoredSqliteBackup:
    """The exact reproduction of issue 14 on SQLite: back up at 10, sign 15, restore, restart."""

    def test_restore_then_ingest_is_refused_until_accepted(self, tmp_path: Path) -> None:
        database = f"sqlite:///{tmp_path / 'trailkeep.db'}"
        key_file = tmp_path / "signing.key"
        tokens = provision(database, "acme", operator=False)
        backup = tmp_path / "backup.db"
        with serving(database, key_file, tmp_path / "first.log", ENV) as (url, _):
            log = Log(url, tokens)
            assert log.ingest("kept", 10).status_code == 201
            log.wait_for_checkpoint(10)
            with sqlite3.connect(_sqlite_file(database)) as src, sqlite3.connect(backup) as dst:
                src.backup(dst)  # the online backup an operator takes with `.backup`
            src.close()
            dst.close()
            assert log.ingest("lost", 5).status_code == 201
            fifteen = log.wait_for_checkpoint(15)
            key = log.key()
        (tmp_path / "fifteen.txt").write_text(fifteen)
        for suffix in ("-wal", "-shm"):
            Path(f"{_sqlite_file(database)}{suffix}").unlink(missing_ok=True)
        _sqlite_file(database).write_bytes(backup.read_bytes())

        server_log = tmp_path / "second.log"
        with serving(database, key_file, server_log, ENV) as (url, _):
            log = Log(url, tokens)
            assert_refused(log.ingest("new", 5), fifteen, database_size=10)
            for _ in range(5):  # over more than a second of checkpoint intervals
                assert log.ingest("again", 1).status_code == 409
                time.sleep(0.25)
            assert len(log.events()) == 10  # reads go on
            ten = log.checkpoint()
            assert ten.splitlines()[1] == "10"  # no second size-15 checkpoint was signed
            assert server_log.read_text().count("LOG FORK") == 1

            self._verify_database(database, key_file, key, tmp_path / "fifteen.txt")
            status = run("signer", "status", "--database", database, "--signing-key", str(key_file))
            assert status.returncode == 2, status
            assert "FORKED" in status.stdout

            accept = run(
                "signer", "accept-database", "--tenant", "acme", "--reason", "restored 10",
                "--database", database, "--signing-key", str(key_file),
            )  # fmt: skip
            assert accept.returncode == 0, accept.stderr
            assert "seq 10" in accept.stdout
            resp = wait_until_accepted(log)
            assert resp.status_code == 201, resp.text
            assert [e["seq"] for e in resp.json()["events"]] == [11, 12]
            audit = log.events()[2]
            assert (audit["action"], audit["category"]) == ("log.accept_database", "system")
            assert audit["metadata"]["signed_root"] == _root(fifteen)
            latest = log.wait_for_checkpoint(13)
            proof = httpx.get(
                f"{url}/v1/log/proof/consistency", params={"from": 10, "to": 13},
                headers=log.auth("reader"),
            ).json()["hashes"]  # fmt: skip
            verify_checkpoints(ten, latest, proof, key)

    @staticmethod
    def _verify_database(database: str, key_file: Path, key: Verifier, held: Path) -> None:
        """A perfect truncation passes the database's own checks; a checkpoint held outside it
        (a file, or the signer state beside the key) catches it."""
        plain = run("verify", "database", "--database", database, "--key", key.key_string())
        assert plain.returncode == 0, plain.stdout + plain.stderr
        with_file = run(
            "verify", "database", "--database", database, "--key", key.key_string(),
            "--checkpoint", str(held),
        )  # fmt: skip
        assert with_file.returncode == 2, with_file.stdout
        assert "FAILED" in with_file.stdout
        assert "(size 10, root" in with_file.stdout
        assert "lacks 5 signed events" in with_file.stdout
        with_state = run("verify", "database", "--database", database, "--signing-key",
                         str(key_file))  # fmt: skip
        assert with_state.returncode == 2, with_state.stdout
        assert "signing.key.state" in with_state.stdout


# -- PostgreSQL: two processes, one database, one key file -------------------------------------


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> str:
    return pg_server.create_database("fork")


def _psql(database: str) -> Any:
    import psycopg

    return psycopg.connect(database, autocommit=True)


def _rewind(database: str, size: int, frontiers: tuple[bytes, bytes]) -> None:
    """Delete the tail past ``size``, as a restore from a logical backup would leave it
    (both trees: the RFC 9162 tree and Pangea's, and their frontiers)."""
    with _psql(database) as conn, conn.transaction():
        conn.execute("DELETE FROM events WHERE tenant_id = 'acme' AND seq >= %s", (size,))
        conn.execute(
            "DELETE FROM tree_nodes WHERE tenant_id = 'acme' AND ((idx + 1) << level) > %s",
            (size,),
        )
        conn.execute(
            "DELETE FROM pangea_tree_nodes WHERE tenant_id = 'acme' AND ((idx + 1) << level) > %s",
            (size,),
        )
        conn.execute("DELETE FROM checkpoints WHERE tenant_id = 'acme' AND size > %s", (size,))
        conn.execute(
            "UPDATE tree_heads SET size = %s, frontier = %s, pangea_frontier = %s"
            " WHERE tenant_id = 'acme'",
            (size, *frontiers),
        )


@pytest.mark.postgres
class TestRestoredPostgres:
    """Two server processes on one PostgreSQL database, sharing one key file or each with its
    own copy (and its own state), refuse a rewound log while running and after a restart,
    until the operator accepts it once per key file."""

    @pytest.mark.parametrize("copies", [pytest.param(False, id="one-key-file"),
                                        pytest.param(True, id="a-key-file-each")])  # fmt: skip
    def test_rewound_under_running_servers_then_restarted(
        self, pg_database: str, tmp_path: Path, copies: bool
    ) -> None:
        tokens = provision(pg_database, "acme", operator=False)
        key_files = [tmp_path / f"host{i if copies else 0}" / "signing.key" for i in range(2)]
        for path in key_files:
            path.parent.mkdir(exist_ok=True)
        load_or_create_signer(key_files[0], "trailkeep.local")
        if copies:
            key_files[1].write_bytes(key_files[0].read_bytes())
            key_files[1].chmod(0o600)

        def servers(stack: ExitStack, name: str) -> list[Log]:
            return [
                Log(stack.enter_context(
                    serving(pg_database, key, tmp_path / f"{name}{i}.log", ENV))[0], tokens)
                for i, key in enumerate(key_files)
            ]  # fmt: skip

        with ExitStack() as stack:
            logs = servers(stack, "first")
            assert logs[0].ingest("kept", 5).status_code == 201
            assert logs[1].ingest("kept", 5).status_code == 201
            logs[0].wait_for_checkpoint(10)
            with _psql(pg_database) as conn:
                row = conn.execute("SELECT frontier, pangea_frontier FROM tree_heads").fetchone()
                frontiers = (row[0], row[1])
            assert logs[1].ingest("lost", 5).status_code == 201
            fifteen = logs[0].wait_for_checkpoint(15)
            time.sleep(1.5)  # both signers remember it: from the shared file, or their sweep
            _rewind(pg_database, 10, frontiers)
            for log in logs:
                assert_refused(log.ingest("new", 5), fifteen, database_size=10)
        with ExitStack() as stack:
            logs = servers(stack, "second")
            for log in logs:
                assert_refused(log.ingest("new", 5), fifteen, database_size=10)
                assert len(log.events()) == 10
            accepts = 0
            for key in sorted(set(key_files)):
                accept = run("signer", "accept-database", "--tenant", "acme",
                             "--database", pg_database, "--signing-key", str(key))  # fmt: skip
                assert accept.returncode == 0, accept.stderr
                assert f"seq {10 + accepts}" in accept.stdout
                accepts += 1
            seqs = [e["seq"] for log in logs for e in wait_until_accepted(log).json()["events"]]
            assert sorted(seqs) == list(range(10 + accepts, 14 + accepts))
            latest = logs[1].wait_for_checkpoint(14 + accepts)
            served = open_checkpoint(logs[0].checkpoint(), logs[0].key())
            assert served.size == 14 + accepts
            assert _root(latest) != _root(fifteen)  # the accepted fork, recorded at seq 10

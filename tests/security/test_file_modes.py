"""Files holding events or keys are created 0600 (issue 14, item 7): database, WAL, SHM, dumps,
signing key; on real files, and through a real ``trailkeep serve``."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.process import running_server
from trailkeep.api.services import Services
from trailkeep.cli.app import app
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.stores import open_store
from trailkeep.service.tenants import TenantService
from trailkeep.settings import Settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The common default: without explicit modes, new files would be 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


class TestDatabaseFiles:
    """A SQLite database and the WAL and SHM files beside it are 0600."""

    def test_new_database(self, tmp_path: Path) -> None:
        db = tmp_path / "new.db"
        store = open_store(f"sqlite:///{db}")
        try:
            TenantService(store).create_tenant("acme")
            store.append("acme", [prepare_event({"action": "a"}, Limits())]).result()
            for path in sqlite_files(db):
                assert path.exists(), path
                assert mode(path) == 0o600, f"{path.name} is {mode(path):o}"
        finally:
            store.close()

    def test_existing_world_readable_database_is_tightened(self, tmp_path: Path) -> None:
        db = tmp_path / "old.db"
        conn = sqlite3.connect(db)  # as an older version (or a restore) left it
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        keep_open = conn  # the WAL and SHM exist while a connection is open
        for path in sqlite_files(db):
            path.chmod(0o644)
        store = open_store(f"sqlite:///{db}")
        try:
            for path in sqlite_files(db):
                assert mode(path) == 0o600, f"{path.name} is {mode(path):o}"
        finally:
            store.close()
            keep_open.close()


class TestDumpFile:
    """``trailkeep dump`` writes 0600, also over an existing file."""

    @pytest.mark.parametrize(
        "existing", [pytest.param(False, id="new"), pytest.param(True, id="overwritten")]
    )
    def test_dump(
        self, settings: Settings, services: Services, tmp_path: Path, existing: bool
    ) -> None:
        services.tenants.create_tenant("acme")
        services.store.append("acme", [prepare_event({"action": "a"}, Limits())]).result()
        services.log.sign_pending()
        out = tmp_path / "acme.jsonl"
        if existing:
            out.write_text("old")
            out.chmod(0o644)
        result = runner.invoke(
            app, ["dump", "--tenant", "acme", "-o", str(out), "--database", settings.database]
        )
        assert result.exit_code == 0, result.output
        assert mode(out) == 0o600
        assert out.read_bytes().count(b"\n") >= 2  # header + the event


class TestServerFiles:
    """A real ``trailkeep serve``, started with umask 022, leaves no file others can read."""

    def test_database_wal_shm_and_key(self, tmp_path: Path) -> None:
        with running_server(tmp_path) as server:
            resp = httpx.post(
                f"{server.url}/v1/events/batch",
                json={"events": [{"action": "a"}] * 10},
                headers=server.auth("writer"),
            )
            assert resp.status_code == 201, resp.text
            private = [*sqlite_files(tmp_path / "trailkeep.db"), tmp_path / "signing.key"]
            for path in private:
                assert path.exists(), path
                assert mode(path) == 0o600, f"{path.name} is {mode(path):o}"

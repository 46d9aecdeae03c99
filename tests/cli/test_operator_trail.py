"""Operator commands are audited on the database and over the API; keys expire and show their
last use; ``export -o`` never overwrites without ``--force`` (issues 16 and 19)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from tests.fast_server import fast_server
from tests.process import Server
from trailkeep.cli.app import app
from trailkeep.cli.client_cmds import EXIT_FILE_EXISTS
from trailkeep.model.tenant import OPERATOR_LOG
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.stores import open_store

runner = CliRunner()


def server_records(database: str, log: str) -> list[dict[str, Any]]:
    """The content of every event in ``log``, in log order."""
    store = open_store(database)
    try:
        events = store.select(log, EventQuery(limit=100, by_seq=True, sort=Sort.ASC))
    finally:
        store.close()
    return [e.content for e in events]


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert runner.invoke(app, ["init", "--database", url]).exit_code == 0
    return url


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


class TestOnTheDatabase:
    """``tenants create`` and ``keys create/revoke`` write their events with the login as
    the actor."""

    def test_each_act_one_event(self, database: str) -> None:
        assert cli("tenants", "create", "acme", "--database", database).exit_code == 0
        made = cli(
            "keys", "create", "--tenant", "acme", "--role", "reader", "--name", "bi",
            "--expires", "30d", "--json", "--database", database,
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        issued = json.loads(made.stdout)
        assert issued["expires_at"] > "2026"
        revoked = cli(
            "keys", "revoke", issued["client_id"], "--tenant", "acme", "--database", database
        )
        assert revoked.exit_code == 0, revoked.output
        (created,) = server_records(database, OPERATOR_LOG)
        assert (created["action"], created["target"]) == (
            "tenant.create",
            {"id": "acme", "type": "tenant"},
        )
        assert created["actor"]["type"] == "cli"
        acme = server_records(database, "acme")
        assert [e["action"] for e in acme] == ["key.create", "key.revoke"]
        assert acme[0]["metadata"] == {"role": "reader", "expires_at": issued["expires_at"]}
        assert issued["client_secret"] not in json.dumps(acme)

    def test_expiry_in_the_past_exits_2(self, database: str) -> None:
        cli("tenants", "create", "acme", "--database", database)
        result = cli(
            "keys", "create", "--tenant", "acme", "--role", "reader", "--expires", "2020-01-01",
            "--database", database,
        )  # fmt: skip
        assert result.exit_code == 2
        assert "not in the future" in result.stderr
        assert server_records(database, "acme") == []

    def test_list_shows_last_use_and_expiry(self, database: str) -> None:
        cli("tenants", "create", "acme", "--database", database)
        cli("keys", "create", "--tenant", "acme", "--role", "reader", "--expires", "1d",
            "--database", database)  # fmt: skip
        listed = cli("keys", "list", "--tenant", "acme", "--json", "--database", database)
        (key,) = json.loads(listed.stdout)
        assert key["last_used_at"] is None
        assert key["expires_at"] is not None
        table = cli("keys", "list", "--tenant", "acme", "--database", database)
        assert "last used" in table.stdout
        assert "never" in table.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with fast_server(tmp_path_factory.mktemp("operator")) as running:
        yield running


def over_api(server: Server, *args: str, role: str = "operator") -> Result:
    env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_ADMIN_TOKEN": server.tokens[role]}
    return runner.invoke(app, list(args), env=env)


class TestOverTheApi:
    """``keys`` with a token asks the server; the new key works, shows its use, and dies."""

    @pytest.mark.parametrize("role", ["operator", "admin"])
    def test_create_use_list_revoke(self, server: Server, role: str) -> None:
        made = over_api(
            server, "keys", "create", "--tenant", "acme", "--role", "reader", "--expires", "1d",
            "--json", role=role,
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        issued = json.loads(made.stdout)
        assert issued["expires_at"]
        headers = {"Authorization": f"Bearer {issued['token']}"}
        assert httpx.get(f"{server.url}/v1/events", headers=headers).status_code == 200
        deadline = time.monotonic() + 10
        while True:
            listed = over_api(server, "keys", "list", "--tenant", "acme", "--json", role=role)
            assert listed.exit_code == 0, listed.output
            (row,) = [k for k in json.loads(listed.stdout) if k["client_id"] == issued["client_id"]]
            if row["last_used_at"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert row["last_used_at"] is not None
        revoked = over_api(
            server, "keys", "revoke", issued["client_id"], "--tenant", "acme", role=role
        )
        assert revoked.exit_code == 0, revoked.output
        time.sleep(5.2)  # the server caches a verified credential for up to 5 s
        assert httpx.get(f"{server.url}/v1/events", headers=headers).status_code == 401
        records = server_records(server.database, "acme")
        mine = [e for e in records if e.get("target", {}).get("id") == issued["client_id"]]
        assert [e["action"] for e in mine] == ["key.create", "key.revoke"]
        assert all(e["actor"]["id"] == server.tokens[role].split(".")[0] for e in mine)

    def test_needs_a_tenant(self, server: Server) -> None:
        result = over_api(server, "keys", "list")
        assert result.exit_code == 2
        assert "--tenant" in result.stderr

    def test_tenant_settings(self, server: Server) -> None:
        env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens["admin"]}
        result = runner.invoke(
            app, ["tenant", "set", "retention=30d", "legal_hold=true", "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        settings = json.loads(result.stdout)["settings"]
        assert (settings["retention_days"], settings["legal_hold"]) == (30, True)
        bad = runner.invoke(app, ["tenant", "set", "retention=14d"], env=env)
        assert bad.exit_code == 1
        assert "not a preset" in bad.stderr


class TestExportForce:
    """``export -o FILE`` leaves an existing FILE alone (exit 5) unless ``--force``."""

    def test_refuses_then_forces(self, server: Server, tmp_path: Path) -> None:
        env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens["reader"]}
        target = tmp_path / "out.csv"
        target.write_text("precious\n")
        before = len(server_records(server.database, "acme"))
        refused = runner.invoke(app, ["export", "--format", "csv", "-o", str(target)], env=env)
        assert refused.exit_code == EXIT_FILE_EXISTS == 6
        assert f"{target} exists" in refused.stderr
        assert "--force" in refused.stderr
        assert target.read_text() == "precious\n"
        assert len(server_records(server.database, "acme")) == before  # no export was made
        forced = runner.invoke(
            app, ["export", "--format", "csv", "-o", str(target), "--force"], env=env
        )
        assert forced.exit_code == 0, forced.output
        assert target.read_text().startswith("id,seq,")


class TestDump:
    """``trailkeep dump`` is an export too: one ``export.create`` after the dumped checkpoint."""

    def test_dump_is_recorded(self, tmp_path: Path, services: Any, settings: Any) -> None:
        from tests.conftest import make_keys
        from trailkeep.service.events import Limits, prepare_event

        make_keys(services, "acme")
        services.store.append("acme", [prepare_event({"action": "a"}, Limits())]).result()
        services.log.sign_pending()
        out = tmp_path / "acme.jsonl"
        result = cli("dump", "--tenant", "acme", "-o", str(out), "--database", settings.database)
        assert result.exit_code == 0, result.output
        records = server_records(settings.database, "acme")
        assert [e["action"] for e in records] == ["a", "export.create"]
        assert records[1]["target"] == {"id": "acme.jsonl", "type": "dump"}
        assert records[1]["metadata"] == {"format": "trailkeep-dump/v1", "size": 1}

"""Administration commands work on the database directly, with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.real import trailkeep
from trailkeep.cli.app import app
from trailkeep.cli.database import EXIT_NO_DATABASE
from trailkeep.merkle import Signer

runner = CliRunner()
KEY = Signer.generate("trailkeep.local").verifier().key_string()


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert runner.invoke(app, ["init", "--database", url]).exit_code == 0
    return url


class TestTenantsAndKeys:
    """``trailkeep tenants`` and ``trailkeep keys`` create what the README says."""

    def test_create_tenant_and_keys(self, database: str) -> None:
        result = runner.invoke(app, ["tenants", "create", "acme", "--database", database])
        assert result.exit_code == 0, result.output
        for role in ("admin", "writer", "reader"):
            result = runner.invoke(
                app,
                [
                    "keys",
                    "create",
                    "--tenant",
                    "acme",
                    "--role",
                    role,
                    "--json",
                    "--database",
                    database,
                ],
            )
            assert result.exit_code == 0, result.output
            issued = json.loads(result.stdout)
            assert set(issued) == {"client_id", "client_secret", "token", "tenant", "role"}
            assert issued["role"] == role
            assert issued["token"] == f"{issued['client_id']}.{issued['client_secret']}"
        listed = runner.invoke(app, ["keys", "list", "--tenant", "acme", "--database", database])
        assert listed.stdout.count("tkc_") == 3
        assert "tks_" not in listed.stdout

    def test_operator_key(self, database: str) -> None:
        result = runner.invoke(
            app, ["keys", "create", "--role", "operator", "--json", "--database", database]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["tenant"] is None

    @pytest.mark.parametrize(
        ("args", "needle"),
        [
            pytest.param(
                ["keys", "create", "--tenant", "ghost", "--role", "admin"],
                "no tenant",
                id="unknown-tenant",
            ),
            pytest.param(["keys", "create", "--role", "admin"], "needs a tenant", id="no-tenant"),
            pytest.param(
                ["keys", "create", "--role", "boss", "--tenant", "x"], "unknown role", id="bad-role"
            ),
        ],
    )
    def test_errors(self, database: str, args: list[str], needle: str) -> None:
        result = runner.invoke(app, [*args, "--database", database])
        assert result.exit_code == 1
        assert needle in result.stderr

    def test_duplicate_tenant(self, database: str) -> None:
        runner.invoke(app, ["tenants", "create", "acme", "--database", database])
        result = runner.invoke(app, ["tenants", "create", "acme", "--database", database])
        assert result.exit_code == 1
        assert "already exists" in result.stderr


class TestNoDatabaseCreatedByAccident:
    """Only `serve` and `init` create a database; every other command says where it looked."""

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param(["tenants", "create", "acme"], id="tenants-create"),
            pytest.param(["tenants", "list"], id="tenants-list"),
            pytest.param(["keys", "create", "--tenant", "acme", "--role", "reader"], id="keys"),
            pytest.param(["keys", "list"], id="keys-list"),
            pytest.param(["keys", "revoke", "tkc_x"], id="keys-revoke"),
            pytest.param(["dump", "--tenant", "acme", "-o", "d.jsonl"], id="dump"),
            pytest.param(["verify", "database", "--key", KEY], id="verify-database"),
        ],
    )
    def test_missing_database(self, tmp_path: Path, args: list[str]) -> None:
        result = trailkeep(*args, cwd=tmp_path)
        assert result.returncode == EXIT_NO_DATABASE, result.stderr
        assert f"no database at {tmp_path.resolve() / 'trailkeep.db'}" in result.stderr
        assert "TRAILKEEP_DATABASE" in result.stderr
        assert "trailkeep init" in result.stderr
        assert list(tmp_path.iterdir()) == []

    def test_init_then_admin(self, tmp_path: Path) -> None:
        created = trailkeep("init", cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        assert f"created database {tmp_path.resolve() / 'trailkeep.db'}" in created.stdout
        assert trailkeep("tenants", "create", "acme", cwd=tmp_path).returncode == 0
        listed = trailkeep("tenants", "list", cwd=tmp_path)
        assert "acme" in listed.stdout
        again = trailkeep("init", cwd=tmp_path)
        assert again.returncode == 0
        assert "migrated database" in again.stdout

    def test_database_from_environment(self, tmp_path: Path) -> None:
        elsewhere = tmp_path / "srv"
        elsewhere.mkdir()
        url = f"sqlite:///{elsewhere / 'audit.db'}"
        assert trailkeep("init", cwd=elsewhere, env={"TRAILKEEP_DATABASE": url}).returncode == 0
        made = trailkeep("tenants", "create", "acme", cwd=tmp_path,
                         env={"TRAILKEEP_DATABASE": url})  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert not (tmp_path / "trailkeep.db").exists()


class TestNameRules:
    """Names are checked as whole strings before the database is touched: exit 2 and the rule."""

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param(["tenants", "create", "abc\n"], id="tenant-trailing-newline"),
            pytest.param(["tenants", "create", "ab\nc"], id="tenant-inner-newline"),
            pytest.param(["tenants", "create", "ACME"], id="tenant-upper-case"),
            pytest.param(["tenants", "create", "Bad Name!"], id="tenant-space-and-bang"),
            pytest.param(["tenants", "create", "a" * 64], id="tenant-64-chars"),
            pytest.param(
                ["keys", "create", "--role", "reader", "--tenant", "acme\n"],
                id="key-tenant-trailing-newline",
            ),
        ],
    )
    def test_bad_tenant_name(self, database: str, args: list[str]) -> None:
        result = runner.invoke(app, [*args, "--database", database])
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.split())  # the console wraps long lines
        assert "invalid tenant name" in said
        assert "lower-case letters, digits" in said
        listed = runner.invoke(app, ["tenants", "list", "--database", database])
        assert "abc" not in listed.output
        assert "acme" not in listed.output

    @pytest.mark.parametrize(
        "name",
        [pytest.param("ops\nkey", id="newline"), pytest.param("ops\x1b[2J", id="escape"),
         pytest.param("k" * 201, id="201-chars")],
    )  # fmt: skip
    def test_bad_key_name(self, database: str, name: str) -> None:
        assert (
            runner.invoke(app, ["tenants", "create", "acme", "--database", database]).exit_code == 0
        )
        result = runner.invoke(
            app,
            ["keys", "create", "--role", "reader", "--tenant", "acme", "--name", name,
             "--database", database],
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "no control characters or line breaks" in " ".join(result.output.split())
        keys = runner.invoke(app, ["keys", "list", "--tenant", "acme", "--database", database])
        assert "reader" not in keys.output

"""Administration commands work on the database directly, with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailkeep.cli.app import app

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


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

"""Operator commands over the API (`redact`, `tenant show/set`) against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.cli.real import trailkeep
from tests.fast_server import fast_server
from tests.process import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with fast_server(tmp_path_factory.mktemp("ops"), {"TRAILKEEP_CHECKPOINT_INTERVAL": "0.1"}) as s:
        yield s


def env(server: Server, role: str = "admin") -> dict[str, str]:
    return {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens[role]}


class TestRedact:
    """`trailkeep redact` erases fields over the API; the event still verifies."""

    def test_redact_then_verify(self, server: Server, tmp_path: Path) -> None:
        body = {"action": "signup", "actor": {"id": "u-9", "email": "eve@x.io"}}
        event = httpx.post(f"{server.url}/v1/events", json=body,
                           headers=server.auth("writer")).json()  # fmt: skip
        done = trailkeep("redact", event["id"], "--field", "actor.email", "--reason", "GDPR",
                         "--json", cwd=tmp_path, env=env(server))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout)["actor"]["email"] == {"redacted": True}
        shown = trailkeep("show", event["id"], "--json", cwd=tmp_path, env=env(server))
        assert shown.returncode == 0, shown.stderr
        assert "VERIFIED" in shown.stderr

    def test_needs_admin(self, server: Server, tmp_path: Path) -> None:
        done = trailkeep("redact", "evt_x", "--field", "message", cwd=tmp_path,
                         env=env(server, "reader"))  # fmt: skip
        assert done.returncode == 1
        assert "403" in done.stderr


class TestTenantSettings:
    """`trailkeep tenant show/set` reads and changes the tenant's settings."""

    def test_set_and_show(self, server: Server, tmp_path: Path) -> None:
        changed = trailkeep("tenant", "set", "retention_days=90", "display_name=Acme Corp",
                            cwd=tmp_path, env=env(server))  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        shown = orjson.loads(trailkeep("tenant", "show", "--json", cwd=tmp_path,
                                       env=env(server)).stdout)  # fmt: skip
        assert shown["settings"]["retention_days"] == 90
        assert shown["settings"]["display_name"] == "Acme Corp"
        cleared = trailkeep("tenant", "set", "retention_days=none", "--json", cwd=tmp_path,
                            env=env(server))  # fmt: skip
        assert orjson.loads(cleared.stdout)["settings"].get("retention_days") is None

    @pytest.mark.parametrize(
        ("args", "needle"),
        [
            pytest.param(["retention_days"], "expected NAME=VALUE", id="no-value"),
            pytest.param(["colour=red"], "colour", id="unknown-setting"),
            pytest.param(["retention_days=0"], "retention_days", id="out-of-range"),
        ],
    )
    def test_errors(self, server: Server, tmp_path: Path, args: list[str], needle: str) -> None:
        result = trailkeep("tenant", "set", *args, cwd=tmp_path, env=env(server))
        assert result.returncode == 1
        assert needle in result.stderr

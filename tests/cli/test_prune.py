"""`trailkeep prune` against a real server process: it prunes over the API with an admin key,
in chunks, and says what went."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from tests.fast_server import fast_server
from tests.process import Server
from trailkeep.cli.app import app

OLD = 25
NEW = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with fast_server(tmp_path_factory.mktemp("prune"), {"TRAILKEEP_PRUNE_INTERVAL": "0"}) as s:
        yield s


def run(server: Server, *args: str, role: str = "admin") -> Result:
    env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens[role]}
    return CliRunner().invoke(app, ["prune", *args], env=env)


def _request(server: Server, method: str, path: str, role: str, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.tokens[role]}"}
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)


class TestPruneCommand:
    """The command refuses without a policy, then prunes every expired event in chunks."""

    def test_end_to_end(self, server: Server) -> None:
        events = [
            {"action": "old", "timestamp": f"2020-05-{1 + i:02d}T00:00:00Z"} for i in range(OLD)
        ] + [{"action": "new"} for _ in range(NEW)]
        resp = _request(server, "POST", "/v1/events/batch", "writer", {"events": events})
        assert resp.status_code == 201, resp.text
        refused = run(server)
        assert refused.exit_code != 0
        assert "retention" in refused.output
        assert _request(server, "PUT", "/v1/tenant", "admin", {"retention_days": 30}).is_success
        assert run(server, role="reader").exit_code != 0
        result = run(server, "--chunk", "10")
        assert result.exit_code == 0, result.output
        assert f"pruned {OLD} events with a timestamp before" in result.stdout
        assert f"(seq 0-{OLD - 1})" in result.stdout
        first = _request(server, "GET", "/v1/events", "reader", None).json()["events"]
        listed = {e["action"] for e in first}
        assert listed == {"new", "tenant.settings", "retention.prune"}  # + the admin trail
        records = [e for e in first if e["action"] == "retention.prune"]
        assert sorted(r["metadata"]["count"] for r in records) == [5, 10, 10]
        again = run(server)
        assert again.exit_code == 0
        assert "pruned 0 events" in again.stdout

"""The vendor dialects in-process, on every backend: each reads the native log in its own
shape and answers failures in its own error shape, while the native API keeps its own.

The vendors' real clients drive the dialects against a real server in ``tests/compat``.
"""

from __future__ import annotations

import base64
import json
from types import ModuleType

import httpx
import pytest

from tests.conftest import Keys
from trailkeep.api.compat import agilicus, axonflow, kubiya, wasabi
from trailkeep.api.compat._common import classify
from trailkeep.errors import QueryTimeoutError

EVENT = {
    "timestamp": "2026-11-23T10:00:05Z",
    "action": "invoke",
    "category": "agents",
    "outcome": "success",
    "actor": {"id": "u-1", "email": "bob@x.io"},
    "target": {"type": "tool", "id": "kubectl"},
    "session_id": "s-1",
    "metadata": {"category_name": "a1", "provider": "openai", "group_id": "g1"},
}
READS = [
    pytest.param("GET", "/api/v1/auditing/items", id="kubiya"),
    pytest.param("POST", "/axonflow/api/v1/audit/search", id="axonflow"),
    pytest.param("GET", "/agilicus/v1/audits", id="agilicus"),
    pytest.param("GET", "/wasabi/api/data/audit", id="wasabi"),
]


async def seed(client: httpx.AsyncClient, keys: Keys) -> str:
    resp = await client.post("/v1/events", json=EVENT, headers=keys.auth("writer"))
    assert resp.status_code == 201
    event_id: str = resp.json()["id"]
    return event_id


@pytest.mark.asyncio
class TestReads:
    """Each dialect lists the native event in its vendor's shape."""

    async def test_each_dialect(self, client: httpx.AsyncClient, acme: Keys) -> None:
        event_id = await seed(client, acme)
        headers = acme.auth("reader")
        kubiya = await client.get(
            "/api/v1/auditing/items",
            params={"filter": '{"category_name": "a1", "timestamp": {}}'},
            headers=headers,
        )
        assert [(i["id"], i["action_successful"]) for i in kubiya.json()] == [(event_id, True)]
        axon = await client.post("/axonflow/api/v1/audit/search", json={}, headers=headers)
        assert [(e["id"], e["provider"]) for e in axon.json()["entries"]] == [(event_id, "openai")]
        agilicus = await client.get("/agilicus/v1/audits", headers=headers)
        assert agilicus.json() == {
            "limit": 500,
            "audits": [
                {
                    "user_id": "u-1",
                    "target_resource_type": "tool",
                    "org_id": "acme",
                    "time": "2026-11-23T10:00:05.000000Z",
                    "action": "invoke",
                    "target_id": "kubectl",
                    "session": "s-1",
                }
            ],
        }
        wasabi = await client.get(
            "/wasabi/api/data/audit", params={"group_id": "g1"}, headers=headers
        )
        assert wasabi.json()["total"] == 1

    async def test_tool_call_is_a_native_event(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await client.post(
            "/axonflow/api/v1/audit/tool-call",
            json={"tool_name": "t", "success": True},
            headers=acme.auth("writer"),
        )
        assert resp.status_code == 201
        got = await client.get(f"/v1/events/{resp.json()['audit_id']}", headers=acme.auth("reader"))
        assert (got.json()["action"], got.json()["target"]) == (
            "tool_call",
            {"type": "tool", "id": "t"},
        )


@pytest.mark.asyncio
class TestErrorShapes:
    """A failure in a dialect is worded by that dialect; the native API keeps its shape."""

    @pytest.mark.parametrize(("method", "path"), READS)
    async def test_unauthenticated(self, client: httpx.AsyncClient, method: str, path: str) -> None:
        resp = await client.request(method, path, json={} if method == "POST" else None)
        assert resp.status_code == 401
        body = resp.json()
        if path.startswith("/axonflow"):
            assert body["error"]["code"] == "UNAUTHORIZED"
        else:
            assert body["code"] == "UNAUTHENTICATED"
            assert isinstance(body["error"], str)

    async def test_native_shape_is_untouched(self, client: httpx.AsyncClient, acme: Keys) -> None:
        unauthenticated = await client.get("/v1/events")
        assert unauthenticated.json()["error"]["code"] == "UNAUTHENTICATED"
        invalid = await client.get("/v1/events", params={"limit": 0}, headers=acme.auth("reader"))
        assert (invalid.status_code, invalid.json()["error"]["code"]) == (400, "INVALID_REQUEST")

    async def test_axonflow_codes(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        creds = base64.b64encode(b"nobody:nothing").decode()
        wrong = await client.post(
            "/axonflow/api/v1/audit/search", json={}, headers={"Authorization": f"Basic {creds}"}
        )
        assert wrong.json()["error"]["code"] == "UNAUTHORIZED"
        forbidden = await client.get(
            "/axonflow/api/v1/audit/tenant/globex", headers=acme.auth("reader")
        )
        assert forbidden.status_code == 403
        assert forbidden.json() == {
            "error": {"code": "FORBIDDEN", "message": "Access denied to tenant 'globex'"}
        }
        bad_range = await client.post(
            "/axonflow/api/v1/audit/search",
            json={"start_time": "2026-01-02", "end_time": "2026-01-01"},
            headers=acme.auth("reader"),
        )
        assert bad_range.json()["error"]["code"] == "INVALID_TIME_RANGE"


class TestQueryTimeout:
    """A read past the per-query time limit is a 503 ``QUERY_TIMEOUT`` in each vendor's shape."""

    @pytest.mark.parametrize(
        ("dialect", "body"),
        [
            pytest.param(
                axonflow, {"error": {"code": "QUERY_TIMEOUT", "message": "slow"}}, id="axonflow"
            ),
            pytest.param(kubiya, {"error": "slow", "code": "QUERY_TIMEOUT"}, id="kubiya"),
            pytest.param(agilicus, {"error": "slow", "code": "QUERY_TIMEOUT"}, id="agilicus"),
            pytest.param(wasabi, {"error": "slow", "code": "QUERY_TIMEOUT"}, id="wasabi"),
        ],
    )
    def test_each_shape(self, dialect: ModuleType, body: dict[str, object]) -> None:
        response = dialect._render(classify(QueryTimeoutError("slow")))
        assert (response.status_code, json.loads(response.body)) == (503, body)

"""``q`` on GET /v1/events, full-text kept in step with ingest and erasure, and facets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Keys

pytestmark = pytest.mark.asyncio

EVENTS: list[dict[str, Any]] = [
    {
        "action": "document.update",
        "category": "users",
        "outcome": "success",
        "timestamp": "2026-11-20T10:00:00Z",
        "message": "Bob updated the quarterly report",
        "actor": {"id": "bob", "email": "bob@x.io"},
        "target": {"type": "document", "id": "d1"},
        "metadata": {"model": "gpt-4o", "tokens_used": 812},
    },
    {
        "action": "document.delete",
        "category": "users",
        "outcome": "failure",
        "timestamp": "2026-11-20T11:00:00Z",
        "message": "Alice could not delete the budget",
        "actor": {"id": "alice", "email": "alice@x.io"},
        "target": {"type": "document", "id": "d2"},
        "metadata": {"model": "claude", "tokens_used": 120},
    },
    {
        "action": "login",
        "category": "auth",
        "outcome": "success",
        "timestamp": "2026-11-21T09:30:00Z",
        "message": "Bob signed in from a new device",
        "actor": {"id": "bob", "email": "bob@x.io"},
        "target": {"type": "session", "id": "s1"},
    },
]


async def seed(client: httpx.AsyncClient, keys: Keys) -> None:
    resp = await client.post(
        "/v1/events/batch", json={"events": EVENTS}, headers=keys.auth("writer")
    )
    assert resp.status_code == 201, resp.text


async def search(client: httpx.AsyncClient, keys: Keys, q: str, **params: Any) -> list[str]:
    resp = await client.get(
        "/v1/events", params={"q": q, "sort": "asc", **params}, headers=keys.auth("reader")
    )
    assert resp.status_code == 200, resp.text
    return [e["action"] for e in resp.json()["events"]]


class TestSearch:
    """The search language selects exactly the matching events of the caller's tenant."""

    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            pytest.param("quarterly", ["document.update"], id="word"),
            pytest.param("BOB", ["document.update", "login"], id="case-insensitive"),
            pytest.param('"new device"', ["login"], id="phrase"),
            pytest.param("actor.email:alice@x.io", ["document.delete"], id="field"),
            pytest.param("action:document.*", ["document.update", "document.delete"], id="prefix"),
            pytest.param("-outcome:failure", ["document.update", "login"], id="exclude"),
            pytest.param("category:auth OR outcome:failure", ["document.delete", "login"], id="or"),
            pytest.param(
                "(bob OR alice) category:users",
                ["document.update", "document.delete"],
                id="parentheses",
            ),
            pytest.param("metadata.tokens_used>500", ["document.update"], id="numeric"),
            pytest.param("metadata.model:gpt-4o", ["document.update"], id="metadata"),
            pytest.param("timestamp>=2026-11-21", ["login"], id="time"),
            pytest.param('message:"x\' OR 1=1 --"', [], id="injection"),
        ],
    )
    async def test_queries(
        self, client: httpx.AsyncClient, acme: Keys, q: str, expected: list[str]
    ) -> None:
        await seed(client, acme)
        assert await search(client, acme, q) == expected

    async def test_combined_with_filters(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme)
        assert await search(client, acme, "bob", outcome="success", start="2026-11-21") == ["login"]

    async def test_other_tenant_sees_nothing(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        await seed(client, acme)
        assert await search(client, globex, "bob") == []

    async def test_syntax_error_points_at_position(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        resp = await client.get(
            "/v1/events", params={"q": "actor.email: AND"}, headers=acme.auth("reader")
        )
        assert resp.status_code == 400
        error = resp.json()["error"]
        assert error["code"] == "INVALID_QUERY"
        assert "position" in error["message"]

    async def test_paging_with_q(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme)
        first = (
            await client.get(
                "/v1/events", params={"q": "bob", "limit": 1}, headers=acme.auth("reader")
            )
        ).json()
        second = (
            await client.get(
                "/v1/events",
                params={"q": "bob", "limit": 1, "cursor": first["next_cursor"]},
                headers=acme.auth("reader"),
            )
        ).json()
        assert [e["action"] for e in first["events"] + second["events"]] == [
            "login",
            "document.update",
        ]
        other = await client.get(
            "/v1/events",
            params={"q": "alice", "cursor": first["next_cursor"]},
            headers=acme.auth("reader"),
        )
        assert other.status_code == 400

    async def test_redacted_text_no_longer_matches(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await seed(client, acme)
        listed = (
            await client.get("/v1/events", params={"q": "quarterly"}, headers=acme.auth("reader"))
        ).json()
        event_id = listed["events"][0]["id"]
        resp = await client.post(
            f"/v1/events/{event_id}/redact",
            json={"fields": ["message"]},
            headers=acme.auth("admin"),
        )
        assert resp.status_code == 200
        assert await search(client, acme, "quarterly") == []


class TestFacets:
    """GET /v1/facets counts values and buckets time for the current selection."""

    async def test_counts(self, client: httpx.AsyncClient, acme: Keys, globex: Keys) -> None:
        await seed(client, acme)
        await seed(client, globex)
        resp = await client.get("/v1/facets", headers=acme.auth("reader"))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["total"] == 3
        facets = {k: {v["value"]: v["count"] for v in vs} for k, vs in body["facets"].items()}
        assert facets["category"] == {"users": 2, "auth": 1}
        assert facets["outcome"] == {"success": 2, "failure": 1}
        assert facets["actor.id"] == {"bob": 2, "alice": 1}
        assert facets["target.type"] == {"document": 2, "session": 1}
        assert body["histogram"]["bucket"] == "hour"
        assert sum(b["count"] for b in body["histogram"]["buckets"]) == 3

    async def test_with_filters_and_q(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme)
        resp = await client.get(
            "/v1/facets",
            params={"q": "bob", "category": "users", "top": 1},
            headers=acme.auth("reader"),
        )
        body = resp.json()
        assert body["total"] == 1
        assert body["facets"]["action"] == [{"value": "document.update", "count": 1}]

    async def test_empty(self, client: httpx.AsyncClient, acme: Keys) -> None:
        body = (await client.get("/v1/facets", headers=acme.auth("reader"))).json()
        assert body["total"] == 0
        assert body["histogram"]["buckets"] == []


class TestUnknownParameters:
    """A parameter a native read route does not know is a 400 naming it, never ignored."""

    @pytest.mark.parametrize(
        ("path", "params", "named", "hint"),
        [
            pytest.param("/v1/events", {"actor_id": "bob"}, "actor_id", "actor.id", id="actor_id"),
            pytest.param("/v1/events", {"acton": "login"}, "acton", "action", id="acton"),
            pytest.param("/v1/events", {"query": "x"}, "query", None, id="no-close-match"),
            pytest.param("/v1/facets", {"actor_id": "bob"}, "actor_id", "actor.id", id="facets"),
            pytest.param("/v1/stream", {"outcom": "failure"}, "outcom", "outcome", id="stream"),
            pytest.param("/v1/events/evt_x", {"pretty": "1"}, "pretty", None, id="one-event"),
            pytest.param("/v1/exports/exp_x", {"cout": "1"}, "cout", "count", id="export"),
        ],
    )
    async def test_refused(
        self,
        client: httpx.AsyncClient,
        acme: Keys,
        path: str,
        params: dict[str, str],
        named: str,
        hint: str | None,
    ) -> None:
        resp = await client.get(path, params=params, headers=acme.auth("reader"))
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["code"] == "INVALID_REQUEST"
        assert f"unknown query parameter '{named}'" in error["message"]
        if hint is not None:
            assert f"did you mean '{hint}'" in error["message"]
        if path == "/v1/events":
            assert "accepted: " in error["message"]
            assert "actor.id" in error["message"]
            assert "cursor" in error["message"]

    async def test_export_creation_takes_no_query(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        resp = await client.post(
            "/v1/exports", params={"q": "x"}, json={}, headers=acme.auth("reader")
        )
        assert resp.status_code == 400, resp.text
        assert "unknown query parameter 'q'" in resp.json()["error"]["message"]

    async def test_known_parameters_still_work(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme)
        params = {"actor.id": "bob", "action": "login", "limit": "5", "sort": "asc"}
        resp = await client.get("/v1/events", params=params, headers=acme.auth("reader"))
        assert resp.status_code == 200, resp.text
        assert [e["action"] for e in resp.json()["events"]] == ["login"]


class TestQueryTimeout:
    """A read past ``query_timeout`` is a 503 QUERY_TIMEOUT; the server keeps serving."""

    async def test_503(self, client: httpx.AsyncClient, acme: Keys, services: Any) -> None:
        batch = [
            {"action": "tool.call", "metadata": {"note": f"n{i} " + "x" * 300}} for i in range(1000)
        ]
        resp = await client.post(
            "/v1/events/batch", json={"events": batch}, headers=acme.auth("writer")
        )
        assert resp.status_code == 201, resp.text
        services.store.query_timeout = 0.0001
        # 64 paths: OR'ed terms on one path would share one parse and finish too soon.
        q = " OR ".join(f"metadata.note{i}:zz{i}" for i in range(64))
        resp = await client.get("/v1/events", params={"q": q}, headers=acme.auth("reader"))
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "QUERY_TIMEOUT"
        services.store.query_timeout = 10.0
        resp = await client.get("/v1/events", params={"q": q}, headers=acme.auth("reader"))
        assert resp.status_code == 200, resp.text
        assert resp.json()["events"] == []

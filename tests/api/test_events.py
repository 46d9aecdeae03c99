"""The native events API end to end, in-process, on a real SQLite file."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.conftest import Keys

pytestmark = pytest.mark.asyncio

FULL_EVENT: dict[str, Any] = {
    "timestamp": "2026-11-23T10:00:05.123Z",
    "action": "document.update",
    "category": "users",
    "outcome": "success",
    "actor": {"id": "u-1", "type": "user", "name": "Bob", "email": "bob@x.io", "role": "editor"},
    "target": {"id": "doc-9", "type": "document", "name": "Q3", "org_id": "org-1"},
    "source": {"ip": "10.0.0.1", "user_agent": "curl/8", "client_id": "cli", "service": "web"},
    "session_id": "s-1",
    "request_id": "r-1",
    "trace_id": "t-1",
    "message": "Bob updated the Q3 report",
    "old": {"title": "draft"},
    "new": {"title": "final", "tags": [1, 2.5, None]},
    "metadata": {"model": "gpt-4o", "tokens_used": 812, "nested": {"a": [True]}},
}


async def post(
    client: httpx.AsyncClient,
    keys: Keys,
    body: Any,
    path: str = "/v1/events",
    role: str = "writer",
    **kw: Any,
) -> httpx.Response:
    return await client.post(path, json=body, headers=keys.auth(role), **kw)


class TestIngest:
    """POST /v1/events and /v1/events/batch store what was sent and add the server fields."""

    async def test_full_event_round_trips(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await post(client, acme, FULL_EVENT)
        assert resp.status_code == 201, resp.text
        stored = resp.json()
        assert stored["id"].startswith("evt_")
        assert stored["tenant_id"] == "acme"
        assert stored["seq"] == 0
        assert stored["timestamp"] == "2026-11-23T10:00:05.123000Z"
        assert len(stored["received_at"]) == len("2026-11-23T10:00:05.123456Z")
        assert len(stored["hash"]) == 64
        for field in ("action", "actor", "target", "source", "old", "new", "metadata", "message"):
            assert stored[field] == FULL_EVENT[field]
        got = await client.get(f"/v1/events/{stored['id']}", headers=acme.auth("reader"))
        assert got.status_code == 200
        assert got.json() == stored

    async def test_defaults(self, client: httpx.AsyncClient, acme: Keys) -> None:
        stored = (await post(client, acme, {"action": "login"})).json()
        assert stored["outcome"] == "unknown"
        assert stored["timestamp"] == stored["received_at"]
        assert "actor" not in stored

    async def test_sequence_is_gap_free(self, client: httpx.AsyncClient, acme: Keys) -> None:
        seqs = [(await post(client, acme, {"action": "a"})).json()["seq"] for _ in range(3)]
        batch = await post(client, acme, {"events": [{"action": "b"}] * 4}, "/v1/events/batch")
        assert batch.status_code == 201
        assert seqs + [e["seq"] for e in batch.json()["events"]] == list(range(7))

    async def test_batch_is_all_or_nothing(self, client: httpx.AsyncClient, acme: Keys) -> None:
        events = [{"action": "ok"}, {"action": "ok"}, {"category": "no action"}]
        resp = await post(client, acme, {"events": events}, "/v1/events/batch")
        assert resp.status_code == 422
        assert "events[2].action" in resp.json()["error"]["message"]
        listed = await client.get("/v1/events", headers=acme.auth("reader"))
        assert listed.json()["events"] == []

    async def test_batch_time_error_names_index(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        events = [{"action": "ok"}, {"action": "ok", "timestamp": "yesterday-ish"}]
        resp = await post(client, acme, {"events": events}, "/v1/events/batch")
        assert resp.status_code == 400
        assert "events[1].timestamp" in resp.json()["error"]["message"]
        listed = await client.get("/v1/events", headers=acme.auth("reader"))
        assert listed.json()["events"] == []


class TestIdempotency:
    """A retried write with the same key returns the first result and writes nothing new."""

    async def test_body_key(self, client: httpx.AsyncClient, acme: Keys) -> None:
        first = await post(client, acme, {"action": "pay", "idempotency_key": "k1"})
        again = await post(client, acme, {"action": "pay", "idempotency_key": "k1"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        listed = (await client.get("/v1/events", headers=acme.auth("reader"))).json()
        assert len(listed["events"]) == 1

    async def test_header_key_on_batch(self, client: httpx.AsyncClient, acme: Keys) -> None:
        body = {"events": [{"action": "a"}, {"action": "b"}]}
        headers = {**acme.auth("writer"), "Idempotency-Key": "batch-7"}
        first = await client.post("/v1/events/batch", json=body, headers=headers)
        again = await client.post("/v1/events/batch", json=body, headers=headers)
        assert again.json() == first.json()
        listed = (await client.get("/v1/events", headers=acme.auth("reader"))).json()
        assert len(listed["events"]) == 2

    async def test_duplicate_key_inside_one_batch(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        body = {
            "events": [
                {"action": "a", "idempotency_key": "d"},
                {"action": "a", "idempotency_key": "d"},
            ]
        }
        resp = await post(client, acme, body, "/v1/events/batch")
        ids = [e["id"] for e in resp.json()["events"]]
        assert ids[0] == ids[1]

    async def test_keys_are_per_tenant(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        a = await post(client, acme, {"action": "x", "idempotency_key": "same"})
        g = await post(client, globex, {"action": "x", "idempotency_key": "same"})
        assert a.json()["id"] != g.json()["id"]
        assert g.json()["tenant_id"] == "globex"


async def seed(
    client: httpx.AsyncClient, keys: Keys, n: int, **fields: Any
) -> list[dict[str, Any]]:
    events = [
        {"action": f"act.{i % 3}", "timestamp": f"2026-01-01T00:00:{i:02d}Z", **fields}
        for i in range(n)
    ]
    resp = await post(client, keys, {"events": events}, "/v1/events/batch")
    assert resp.status_code == 201, resp.text
    stored: list[dict[str, Any]] = resp.json()["events"]
    return stored


class TestList:
    """GET /v1/events filters, bounds, sorts and pages."""

    @pytest.mark.parametrize(
        ("param", "value", "expected"),
        [
            pytest.param("action", "document.update", 1, id="action"),
            pytest.param("category", "users", 1, id="category"),
            pytest.param("outcome", "success", 1, id="outcome"),
            pytest.param("actor.id", "u-1", 1, id="actor.id"),
            pytest.param("actor.email", "bob@x.io", 1, id="actor.email"),
            pytest.param("actor.type", "user", 1, id="actor.type"),
            pytest.param("target.id", "doc-9", 1, id="target.id"),
            pytest.param("target.type", "document", 1, id="target.type"),
            pytest.param("source.ip", "10.0.0.1", 1, id="source.ip"),
            pytest.param("client_id", "cli", 1, id="client_id"),
            pytest.param("session_id", "s-1", 1, id="session_id"),
            pytest.param("request_id", "r-1", 1, id="request_id"),
            pytest.param("trace_id", "t-1", 1, id="trace_id"),
            pytest.param("actor.id", "nobody", 0, id="no-match"),
        ],
    )
    async def test_each_filter(
        self, client: httpx.AsyncClient, acme: Keys, param: str, value: str, expected: int
    ) -> None:
        await post(client, acme, FULL_EVENT)
        await post(client, acme, {"action": "other", "outcome": "failure"})
        resp = await client.get("/v1/events", params={param: value}, headers=acme.auth("reader"))
        assert resp.status_code == 200, resp.text
        assert len(resp.json()["events"]) == expected

    async def test_repeated_filter_means_any(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, 9)
        resp = await client.get(
            "/v1/events",
            params=[("action", "act.0"), ("action", "act.1")],
            headers=acme.auth("reader"),
        )
        assert len(resp.json()["events"]) == 6

    async def test_time_bounds_inclusive_exclusive(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await seed(client, acme, 10)
        params = {"start": "2026-01-01T00:00:03Z", "end": "2026-01-01T00:00:06", "sort": "asc"}
        resp = await client.get("/v1/events", params=params, headers=acme.auth("reader"))
        assert [e["timestamp"][17:19] for e in resp.json()["events"]] == ["03", "04", "05"]

    async def test_relative_time(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, 2)
        await post(client, acme, {"action": "recent"})
        resp = await client.get(
            "/v1/events", params={"start": "now-1h"}, headers=acme.auth("reader")
        )
        assert [e["action"] for e in resp.json()["events"]] == ["recent"]

    async def test_sort(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, 5)
        desc = (await client.get("/v1/events", headers=acme.auth("reader"))).json()["events"]
        asc = (
            await client.get("/v1/events", params={"sort": "asc"}, headers=acme.auth("reader"))
        ).json()["events"]
        assert [e["seq"] for e in desc] == [4, 3, 2, 1, 0]
        assert [e["seq"] for e in asc] == [0, 1, 2, 3, 4]

    async def test_default_limit_is_50(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, 55)
        page = (await client.get("/v1/events", headers=acme.auth("reader"))).json()
        assert len(page["events"]) == 50
        assert page["next_cursor"]

    async def test_cursor_walk_is_stable_under_new_writes(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await seed(client, acme, 25)
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 10}
        while True:
            page = (
                await client.get("/v1/events", params=params, headers=acme.auth("reader"))
            ).json()
            seen += [e["seq"] for e in page["events"]]
            await post(
                client, acme, {"action": "arrived.mid.walk", "timestamp": "2026-01-01T00:00:10.5Z"}
            )
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == list(range(24, -1, -1))

    async def test_exact_multiple_has_no_empty_last_page(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await seed(client, acme, 20)
        page = (
            await client.get("/v1/events", params={"limit": 10}, headers=acme.auth("reader"))
        ).json()
        page2 = (
            await client.get(
                "/v1/events",
                params={"limit": 10, "cursor": page["next_cursor"]},
                headers=acme.auth("reader"),
            )
        ).json()
        assert len(page2["events"]) == 10
        assert page2["next_cursor"] is None


class TestErrors:
    """Bad input is a 4xx in the error shape, naming the problem; nothing is written."""

    @pytest.mark.parametrize(
        ("body", "status", "code", "needle"),
        [
            pytest.param(b"{not json", 400, "INVALID_JSON", "JSON", id="malformed-json"),
            pytest.param(b'{"action": 5}', 422, "VALIDATION_FAILED", "action", id="wrong-type"),
            pytest.param(b"{}", 422, "VALIDATION_FAILED", "action", id="missing-action"),
            pytest.param(b'{"action": ""}', 422, "VALIDATION_FAILED", "action", id="empty-action"),
            pytest.param(
                b'{"action": "a", "colour": 1}',
                422,
                "VALIDATION_FAILED",
                "colour",
                id="unknown-field",
            ),
            pytest.param(
                b'{"action": "a", "actor": {"nick": "x"}}',
                422,
                "VALIDATION_FAILED",
                "actor.nick",
                id="unknown-sub-field",
            ),
            pytest.param(
                b'{"action": "a", "seq": 4}', 422, "VALIDATION_FAILED", "seq", id="server-field"
            ),
            pytest.param(
                b'{"action": "a", "outcome": "maybe"}',
                422,
                "VALIDATION_FAILED",
                "outcome",
                id="bad-outcome",
            ),
            pytest.param(
                b'{"action": "a", "timestamp": "tuesday"}',
                400,
                "INVALID_TIME",
                "timestamp",
                id="bad-time",
            ),
            pytest.param(b"[]", 422, "VALIDATION_FAILED", "body", id="not-an-object"),
            pytest.param(
                b'{"action": "a", "metadata": {"n": 18446744073709551616}}',
                422,
                "VALIDATION_FAILED",
                "64-bit",
                id="integer-beyond-64-bits",
            ),
        ],
    )
    async def test_bad_event(
        self,
        client: httpx.AsyncClient,
        acme: Keys,
        body: bytes,
        status: int,
        code: str,
        needle: str,
    ) -> None:
        resp = await client.post(
            "/v1/events",
            content=body,
            headers={**acme.auth("writer"), "Content-Type": "application/json"},
        )
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["code"] == code
        assert needle in error["message"]
        assert (await client.get("/v1/events", headers=acme.auth("reader"))).json()["events"] == []

    async def test_oversize_event(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await post(client, acme, {"action": "a", "message": "x" * 70_000})
        assert resp.status_code == 413
        assert "65536" in resp.json()["error"]["message"]

    async def test_too_many_events(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await post(client, acme, {"events": [{"action": "a"}] * 1001}, "/v1/events/batch")
        assert resp.status_code == 413
        assert "1000" in resp.json()["error"]["message"]

    async def test_oversize_body(self, client: httpx.AsyncClient, acme: Keys) -> None:
        events = [{"action": "a", "message": "y" * 60_000}] * 150
        resp = await post(client, acme, {"events": events}, "/v1/events/batch")
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "TOO_LARGE"

    async def test_empty_batch(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await post(client, acme, {"events": []}, "/v1/events/batch")
        assert resp.status_code == 422

    @pytest.mark.parametrize(
        ("params", "needle"),
        [
            pytest.param({"start": "last tuesday"}, "start", id="bad-start"),
            pytest.param({"end": "2026-13-01"}, "end", id="bad-end"),
            pytest.param({"cursor": "garbage!"}, "cursor", id="bad-cursor"),
            pytest.param({"limit": "0"}, "limit", id="limit-zero"),
            pytest.param({"limit": "1001"}, "limit", id="limit-too-big"),
            pytest.param({"sort": "sideways"}, "sort", id="bad-sort"),
        ],
    )
    async def test_bad_list_params(
        self, client: httpx.AsyncClient, acme: Keys, params: dict[str, str], needle: str
    ) -> None:
        resp = await client.get("/v1/events", params=params, headers=acme.auth("reader"))
        assert resp.status_code == 400, resp.text
        assert needle in resp.json()["error"]["message"]

    async def test_cursor_from_another_query(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, 5)
        page = (
            await client.get("/v1/events", params={"limit": 2}, headers=acme.auth("reader"))
        ).json()
        resp = await client.get(
            "/v1/events",
            params={"limit": 2, "action": "act.1", "cursor": page["next_cursor"]},
            headers=acme.auth("reader"),
        )
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == "INVALID_CURSOR"

    async def test_unknown_id(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await client.get("/v1/events/evt_nope", headers=acme.auth("reader"))
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "NOT_FOUND"

    async def test_unknown_route(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/v1/nothing")
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "NOT_FOUND"


class TestAuth:
    """Credentials are checked, roles enforced, and the tenant comes from the credential."""

    async def test_missing_credential(self, client: httpx.AsyncClient) -> None:
        resp = await client.get("/v1/events")
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"

    @pytest.mark.parametrize(
        "header", ["Bearer nope", "Bearer tkc_x.tks_y", "Basic !!!", "Token x"]
    )
    async def test_bad_credential(self, client: httpx.AsyncClient, acme: Keys, header: str) -> None:
        resp = await client.get("/v1/events", headers={"Authorization": header})
        assert resp.status_code == 401

    async def test_basic_and_userkey(self, client: httpx.AsyncClient, acme: Keys) -> None:
        client_id, secret = acme.reader.split(".", 1)
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        for header in (f"Basic {basic}", f"UserKey {acme.reader}"):
            resp = await client.get("/v1/events", headers={"Authorization": header})
            assert resp.status_code == 200, header

    async def test_roles(self, client: httpx.AsyncClient, acme: Keys) -> None:
        assert (await post(client, acme, {"action": "a"}, role="reader")).status_code == 403
        assert (await client.get("/v1/events", headers=acme.auth("writer"))).status_code == 403
        assert (await post(client, acme, {"action": "a"}, role="admin")).status_code == 201
        assert (await client.get("/v1/events", headers=acme.auth("admin"))).status_code == 200
        assert (await client.get("/v1/tenants", headers=acme.auth("admin"))).status_code == 403

    async def test_org_header_mismatch(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        resp = await client.get("/v1/events", headers={**acme.auth("reader"), "X-Org-ID": "globex"})
        assert resp.status_code == 403
        same = await client.get("/v1/events", headers={**acme.auth("reader"), "X-Org-ID": "acme"})
        assert same.status_code == 200

    async def test_isolation(self, client: httpx.AsyncClient, acme: Keys, globex: Keys) -> None:
        mine = (await post(client, acme, {"action": "secret"})).json()
        other = await client.get(f"/v1/events/{mine['id']}", headers=globex.auth("reader"))
        assert other.status_code == 404
        listed = (await client.get("/v1/events", headers=globex.auth("reader"))).json()
        assert listed["events"] == []
        body = {"action": "x", "tenant_id": "acme"}
        assert (await post(client, globex, body)).status_code == 422

    async def test_operator_acts_in_named_tenant(
        self, client: httpx.AsyncClient, acme: Keys, operator_token: str
    ) -> None:
        op = {"Authorization": f"Bearer {operator_token}"}
        assert (await client.get("/v1/events", headers=op)).status_code == 400
        resp = await client.post(
            "/v1/events", json={"action": "op"}, headers={**op, "X-Org-ID": "acme"}
        )
        assert resp.status_code == 201
        assert resp.json()["tenant_id"] == "acme"
        missing = await client.get("/v1/events", headers={**op, "X-Org-ID": "nope"})
        assert missing.status_code == 404

    async def test_revoked_key(self, client: httpx.AsyncClient, services: Any, acme: Keys) -> None:
        client_id = acme.reader.split(".")[0]
        services.tenants.revoke_key(client_id, "acme")
        services.auth._cache.clear()
        assert (await client.get("/v1/events", headers=acme.auth("reader"))).status_code == 401

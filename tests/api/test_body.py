"""Event bodies are read by the routes (so large ones are parsed off the event loop); they are
validated, answered and documented exactly as declared FastAPI bodies were."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Keys
from trailkeep.api.body import OFFLOAD_BYTES

pytestmark = pytest.mark.asyncio

BAD_BODIES = [
    pytest.param(b"", 422, "VALIDATION_FAILED", "body: Field required", id="empty"),
    pytest.param(b"{", 400, "INVALID_JSON", "", id="truncated"),
    pytest.param(b"\x80\x81", 400, "INVALID_JSON", "", id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, "INVALID_JSON", "", id="nested-too-deep"),
    pytest.param(b"[]", 422, "VALIDATION_FAILED", "body: ", id="array"),
]


async def post_raw(client: httpx.AsyncClient, keys: Keys, path: str, body: bytes) -> httpx.Response:
    headers = {**keys.auth("writer"), "Content-Type": "application/json"}
    return await client.post(path, content=body, headers=headers)


class TestBadBodies:
    """Malformed bodies get the same 400/422 on both routes, never a 500."""

    @pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
    @pytest.mark.parametrize(("body", "status", "code", "message"), BAD_BODIES)
    async def test_refused(
        self,
        client: httpx.AsyncClient,
        acme: Keys,
        path: str,
        body: bytes,
        status: int,
        code: str,
        message: str,
    ) -> None:
        resp = await post_raw(client, acme, path, body)
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["code"] == code
        assert resp.json()["error"]["message"].startswith(message)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            pytest.param({"events": [{"action": "a"}, {}]}, "events[1].action: Field required",
                         id="missing-field"),
            pytest.param({"events": [{"action": "a", "colour": 1}]},
                         "events[0].colour: unknown field", id="unknown-field"),
            pytest.param({"events": [], "more": 1}, "more: unknown field", id="unknown-top-level"),
        ],
    )  # fmt: skip
    async def test_locations_named(
        self, client: httpx.AsyncClient, acme: Keys, body: dict[str, Any], message: str
    ) -> None:
        resp = await client.post("/v1/events/batch", json=body, headers=acme.auth("writer"))
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["message"].startswith(message)

    async def test_unauthenticated_is_refused_before_the_body_is_read(
        self, client: httpx.AsyncClient
    ) -> None:
        resp = await client.post("/v1/events/batch", content=b"{")
        assert resp.status_code == 401


class TestLargeBodies:
    """Bodies past the offload size take the worker-thread path and give the same answers."""

    @pytest.mark.parametrize(
        "batch", [pytest.param(False, id="single"), pytest.param(True, id="batch")]
    )
    async def test_same_result(self, client: httpx.AsyncClient, acme: Keys, batch: bool) -> None:
        event = {"action": "big", "metadata": {"blob": "x" * 60_000}}
        body: Any = {"events": [event] * 8} if batch else event
        path = "/v1/events/batch" if batch else "/v1/events"
        resp = await client.post(path, json=body, headers=acme.auth("writer"))
        assert len(resp.request.content) > (OFFLOAD_BYTES if batch else 0)
        assert resp.status_code == 201, resp.text[:300]
        stored = resp.json()["events"] if batch else [resp.json()]
        assert all(e["metadata"] == event["metadata"] for e in stored)

    async def test_large_invalid_body_names_the_index(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        events: list[dict[str, Any]] = [{"action": "a", "message": "m" * 1000}] * 400
        events = [*events, {"message": "no action"}]
        resp = await client.post(
            "/v1/events/batch", json={"events": events}, headers=acme.auth("writer")
        )
        assert resp.status_code == 422
        assert resp.json()["error"]["message"] == "events[400].action: Field required"


class TestOpenAPI:
    """Both routes still document their JSON bodies, with every referenced schema present."""

    @pytest.mark.parametrize(
        ("path", "model"), [("/v1/events", "EventIn"), ("/v1/events/batch", "BatchIn")]
    )
    async def test_body_documented(self, client: httpx.AsyncClient, path: str, model: str) -> None:
        spec = (await client.get("/openapi.json")).json()
        body = spec["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model}"
        schemas = spec["components"]["schemas"]
        text = str(schemas[model]) + str(schemas["EventIn"])
        for name in ("EventIn", "Actor", "Target", "Source", "Signature"):
            assert name in schemas
        assert "#/components/schemas/" in text

"""``IngestEdge`` answers the ingest routes' common case itself and hands everything else to the
routes unchanged, its body replayed; the answers are the routes' either way."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.conftest import Keys
from trailkeep.api.ingest_edge import IngestEdge
from trailkeep.api.metrics import Metrics
from trailkeep.api.services import Services
from trailkeep.model.tenant import Permission

pytestmark = pytest.mark.asyncio

EVENT = {"action": "user.login", "actor": {"id": "u1"}, "outcome": "success"}


class _Routes:
    """The app behind the edge: records what reaches it, answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _call(
    edge: IngestEdge, path: str, body: bytes, headers: dict[str, str], chunk: int = 0
) -> tuple[int, dict[str, str], Any]:
    """One request through ``edge``; the body in pieces of ``chunk`` bytes when given."""
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    messages: list[Message] = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await edge(scope, receive, send)
    start = sent[0]
    out = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], out, orjson.loads(payload) if payload else None


@pytest.fixture
def routes() -> _Routes:
    return _Routes()


@pytest.fixture
def edge(services: Services, routes: _Routes) -> IngestEdge:
    return IngestEdge(routes, services=services, metrics=Metrics(services.store))


@pytest.fixture
def writer(services: Services, acme: Keys) -> dict[str, str]:
    """The writer's headers, its credential verified once (as the routes' first request does)."""
    headers = {**acme.auth("writer"), "Content-Type": "application/json"}
    services.auth.authenticate(headers["Authorization"], None, Permission.WRITE)
    return headers


class TestAnsweredHere:
    async def test_one_event(
        self, edge: IngestEdge, routes: _Routes, writer: dict[str, str], services: Services
    ) -> None:
        status, _, out = await _call(edge, "/v1/events", orjson.dumps(EVENT), writer)
        assert status == 201
        assert routes.bodies == []
        assert out["action"] == "user.login"
        assert out["seq"] == 0
        assert services.events.get("acme", out["id"]).content["actor"] == {"id": "u1"}

    async def test_batch_in_pieces_with_a_key_and_minimal(
        self, edge: IngestEdge, routes: _Routes, writer: dict[str, str]
    ) -> None:
        body = orjson.dumps({"events": [EVENT, {**EVENT, "action": "user.logout"}]})
        headers = {**writer, "Idempotency-Key": "k1", "Prefer": "return=minimal"}
        status, out_headers, out = await _call(edge, "/v1/events/batch", body, headers, chunk=7)
        assert status == 201
        assert routes.bodies == []
        assert out_headers["preference-applied"] == "return=minimal"
        assert [e["seq"] for e in out["events"]] == [0, 1]
        assert set(out["events"][0]) == {"id", "seq", "hash", "received_at"}
        again = await _call(edge, "/v1/events/batch", body, headers)
        assert [e["id"] for e in again[2]["events"]] == [e["id"] for e in out["events"]]

    async def test_a_service_error_in_the_error_shape(
        self, edge: IngestEdge, routes: _Routes, writer: dict[str, str]
    ) -> None:
        body = orjson.dumps({"events": [EVENT] * 1001})
        status, _, out = await _call(edge, "/v1/events/batch", body, writer)
        assert status == 413
        assert routes.bodies == []
        assert out["error"]["code"] == "TOO_LARGE"
        assert "1001" in out["error"]["message"]


class TestSentOn:
    @pytest.mark.parametrize(
        ("path", "body", "extra"),
        [
            ("/v1/events", b'{"action": 5}', {}),  # the route's validation error
            ("/v1/events", b"not json", {}),
            ("/v1/events/batch", orjson.dumps(EVENT), {}),  # an event where a batch goes
            ("/v1/events", orjson.dumps(EVENT), {"Content-Type": "text/plain"}),
            ("/v1/events", orjson.dumps(EVENT), {"Idempotency-Key": "k" * 201}),
            ("/v1/events", orjson.dumps(EVENT), {"Authorization": "Bearer nope.x"}),
            ("/v1/events/", orjson.dumps(EVENT), {}),  # not the exact path
        ],
    )
    async def test_with_its_body(
        self,
        edge: IngestEdge,
        routes: _Routes,
        writer: dict[str, str],
        path: str,
        body: bytes,
        extra: dict[str, str],
    ) -> None:
        status, _, _ = await _call(edge, path, body, {**writer, **extra}, chunk=5)
        assert status == 299
        assert routes.bodies == [body]

    async def test_a_credential_not_yet_verified(
        self, edge: IngestEdge, routes: _Routes, acme: Keys
    ) -> None:
        headers = {**acme.auth("writer"), "Content-Type": "application/json"}
        status, _, _ = await _call(edge, "/v1/events", orjson.dumps(EVENT), headers)
        assert status == 299

    async def test_a_reader(self, edge: IngestEdge, routes: _Routes, acme: Keys) -> None:
        services_auth = edge._services.auth
        services_auth.authenticate(acme.auth("reader")["Authorization"], None, Permission.READ)
        headers = {**acme.auth("reader"), "Content-Type": "application/json"}
        status, _, _ = await _call(edge, "/v1/events", orjson.dumps(EVENT), headers)
        assert status == 299  # the route answers 403 as it always has


async def test_the_app_labels_the_route(client: httpx.AsyncClient, acme: Keys) -> None:
    for _ in range(2):  # the first verifies the credential through the route; the second not
        resp = await client.post("/v1/events", json=EVENT, headers=acme.auth("writer"))
        assert resp.status_code == 201
    metrics = (await client.get("/metrics")).text
    line = 'trailkeep_http_requests_total{method="POST",route="/v1/events",status="201"} 2.0'
    assert line in metrics

"""Limits and abuse: rate limits, size and batch limits, hashed secrets, slow and idle clients."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Keys
from tests.fast_server import fast_server
from tests.process import Server
from trailkeep.api.app import create_app
from trailkeep.api.ratelimit import TokenBuckets, principal_key
from trailkeep.api.services import Services
from trailkeep.model.tenant import Role
from trailkeep.settings import Settings

EVENT = {"action": "login", "actor": {"id": "u-1"}}


def limited_client(
    settings: Settings, services: Services, rate: float, burst: int
) -> httpx.AsyncClient:
    limited = settings.model_copy(update={"rate_limit_per_second": rate, "rate_limit_burst": burst})
    app = create_app(limited, services)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test")


class TestTokenBuckets:
    """A bucket allows ``burst`` at once, then ``rate`` per second, per key."""

    def test_burst_then_refill(self) -> None:
        buckets = TokenBuckets(rate=2, burst=3)
        assert [buckets.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert buckets.take("a", now=0.0) == pytest.approx(0.5)
        assert buckets.take("b", now=0.0) == 0.0
        assert buckets.take("a", now=0.5) == 0.0


@pytest.mark.asyncio
class TestPrincipalKey:
    """A request counts against its client id only once its secret checks out, else its IP."""

    @pytest.mark.parametrize(
        ("header", "counted_as"),
        [
            pytest.param("Bearer {token}", "id", id="bearer"),
            pytest.param("UserKey {token}", "id", id="userkey"),
            pytest.param("Basic {basic}", "id", id="basic"),
            pytest.param("Bearer {client_id}.x", "ip", id="claimed-client-id-wrong-secret"),
            pytest.param("Basic {wrong_basic}", "ip", id="claimed-client-id-basic"),
            pytest.param("Bearer {token}x", "ip", id="secret-with-trailing-garbage"),
            pytest.param("Basic !!!", "ip", id="bad-basic"),
            pytest.param("Bearer nodot", "ip", id="not-a-token"),
            pytest.param("Digest x", "ip", id="other-scheme"),
        ],
    )
    async def test_key(self, services: Services, acme: Keys, header: str, counted_as: str) -> None:
        client_id, secret = acme.reader.split(".", 1)
        value = header.format(
            token=acme.reader,
            client_id=client_id,
            basic=base64.b64encode(f"{client_id}:{secret}".encode()).decode(),
            wrong_basic=base64.b64encode(f"{client_id}:nope".encode()).decode(),
        )
        scope = {"headers": [(b"authorization", value.encode())], "client": ("10.0.0.9", 1)}
        key = await principal_key(services.auth)(scope)
        assert key == ("id:" + client_id if counted_as == "id" else "ip:10.0.0.9")

    async def test_revoked_key_counts_as_its_peer(self, services: Services, acme: Keys) -> None:
        client_id = acme.reader.split(".", 1)[0]
        services.tenants.revoke_key(client_id, "acme")
        scope = {"headers": [(b"authorization", b"Bearer " + acme.reader.encode())]}
        scope["client"] = ("10.0.0.7", 1)
        assert await principal_key(services.auth)(scope) == "ip:10.0.0.7"


@pytest.mark.asyncio
class TestRateLimit:
    """Over its burst a client gets 429 with Retry-After in the native shape; others do not."""

    async def test_429_after_burst(
        self, settings: Settings, services: Services, acme: Keys, globex: Keys
    ) -> None:
        async with limited_client(settings, services, rate=0.5, burst=3) as c:
            codes = [
                (await c.get("/v1/events", headers=acme.auth("reader"))).status_code
                for _ in range(3)
            ]
            assert codes == [200, 200, 200]
            resp = await c.post("/v1/events", json=EVENT, headers=acme.auth("reader"))
            assert resp.status_code == 429
            assert resp.json()["error"]["code"] == "RATE_LIMITED"
            assert int(resp.headers["Retry-After"]) >= 1
            # another key of the same tenant, another tenant, and probes are unaffected
            assert (await c.get("/v1/events", headers=acme.auth("admin"))).status_code == 200
            assert (await c.get("/v1/events", headers=globex.auth("reader"))).status_code == 200
            assert (await c.get("/healthz")).status_code == 200

    async def test_claimed_client_id_cannot_lock_its_owner_out(
        self, settings: Settings, services: Services, acme: Keys
    ) -> None:
        """Issue 14 item 5: ``Bearer <client_id>.x`` spends the sender's budget, not the key's."""
        client_id = acme.reader.split(".", 1)[0]
        forged = {"Authorization": f"Bearer {client_id}.x"}
        async with limited_client(settings, services, rate=0.5, burst=3) as c:
            codes = [(await c.get("/v1/events", headers=forged)).status_code for _ in range(5)]
            assert codes == [401, 401, 401, 429, 429]
            owner = [
                (await c.get("/v1/events", headers=acme.auth("reader"))).status_code
                for _ in range(3)
            ]
            assert owner == [200, 200, 200]

    async def test_anonymous_keyed_by_ip(self, settings: Settings, services: Services) -> None:
        async with limited_client(settings, services, rate=0.5, burst=2) as c:
            codes = [(await c.get("/v1/log/key")).status_code for _ in range(3)]
            assert codes == [200, 200, 429]

    async def test_off_by_default(self, client: httpx.AsyncClient, acme: Keys) -> None:
        for _ in range(50):
            assert (await client.get("/v1/log/key")).status_code == 200


@pytest.mark.asyncio
class TestSizeLimits:
    """Oversize requests get 413 before their body is read; oversize batches get 413."""

    async def test_413_before_reading_body(self, settings: Settings, services: Services) -> None:
        app = create_app(settings, services)
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            raise AssertionError("the body must not be read")

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "path": "/v1/events/batch",
            "raw_path": b"/v1/events/batch",
            "query_string": b"",
            "headers": [(b"content-length", str(settings.max_batch_bytes + 1).encode())],
            "client": ("127.0.0.1", 1),
            "server": ("t", 80),
            "scheme": "http",
            "root_path": "",
        }
        await app(scope, receive, send)  # type: ignore[arg-type]
        assert sent[0]["status"] == 413

    async def test_streamed_body_over_limit(
        self, settings: Settings, services: Services, acme: Keys
    ) -> None:
        small = settings.model_copy(update={"max_batch_bytes": 1000})
        app = create_app(small, services)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 500

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t.test"
        ) as c:
            resp = await c.post("/v1/events", content=chunks(), headers=acme.auth("writer"))
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "TOO_LARGE"

    async def test_batch_over_event_limit(self, client: httpx.AsyncClient, acme: Keys) -> None:
        batch = {"events": [EVENT] * 1001}
        resp = await client.post("/v1/events/batch", json=batch, headers=acme.auth("writer"))
        assert resp.status_code in (413, 422)
        assert resp.json()["error"]["code"] in ("TOO_LARGE", "VALIDATION_FAILED")
        count = await client.get("/v1/events", headers=acme.auth("reader"))
        assert count.json()["events"] == []

    async def test_event_over_size_limit(self, client: httpx.AsyncClient, acme: Keys) -> None:
        big = {**EVENT, "message": "x" * (65 * 1024)}
        resp = await client.post("/v1/events", json=big, headers=acme.auth("writer"))
        assert resp.status_code == 413


class TestSecretsHashed:
    """No key secret is ever written to the database file or to the server's log."""

    def test_database_file(self, settings: Settings, services: Services) -> None:
        services.tenants.create_tenant("acme")
        issued = [services.tenants.create_key("acme", Role(r)) for r in ("writer", "admin")]
        issued.append(services.tenants.create_key(None, Role.OPERATOR))
        services.close()
        path = Path(settings.database.removeprefix("sqlite:///"))
        data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for key in issued:
            assert key.key.client_id.encode() in data  # the check can see what is stored
            assert key.secret.encode() not in data
            assert key.token.encode() not in data

    def test_server_log(self, tmp_path: Path) -> None:
        with fast_server(tmp_path, env={"TRAILKEEP_WORKERS_LOG_LEVEL": "debug"}) as server:
            tokens = server.tokens
            with httpx.Client(base_url=server.url, timeout=10) as c:
                c.post("/v1/events", json=EVENT, headers=server.auth("writer"))
                c.get("/v1/events", headers=server.auth("reader"))
                c.get("/v1/tenants", headers=server.auth("operator"))
                client_id, secret = tokens["reader"].split(".", 1)
                basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
                c.get("/v1/events", headers={"Authorization": f"Basic {basic}"})
                c.get("/v1/events", headers={"Authorization": f"Bearer {client_id}.wrong{secret}"})
                created = c.post(
                    "/v1/tenants/acme/keys",
                    json={"role": "reader"},
                    headers=server.auth("operator"),
                ).json()
            server.process.terminate()
            server.process.wait(timeout=10)
        log = server.log_path.read_bytes()
        assert log  # the server did write a log
        for token in [*tokens.values(), created["token"]]:
            assert token.split(".", 1)[1].encode() not in log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with fast_server(tmp_path_factory.mktemp("abuse")) as running:
        yield running


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


class TestSlowAndIdleClients:
    """A client trickling its body, or hundreds of idle connections, do not stop the server."""

    def test_slow_body_does_not_block_others(self, server: Server) -> None:
        sock = _connect(server.url)
        body = b'{"action": "slow"}'
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + server.tokens["writer"].encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        stop = threading.Event()

        def trickle() -> None:
            for byte in body[:-1]:
                if stop.wait(0.1):
                    return
                sock.sendall(bytes([byte]))

        thread = threading.Thread(target=trickle)
        thread.start()
        try:
            with httpx.Client(base_url=server.url, timeout=5) as c:
                for _ in range(10):
                    started = time.monotonic()
                    resp = c.get("/v1/events", headers=server.auth("reader"))
                    assert resp.status_code == 200
                    assert time.monotonic() - started < 1.0
        finally:
            stop.set()
            thread.join()
            sock.close()

    def test_many_idle_keepalive_connections(self, server: Server) -> None:
        async def scenario() -> None:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=20) as c:
                codes = await asyncio.gather(*(c.get("/healthz") for _ in range(200)))
                assert {r.status_code for r in codes} == {200}
                # 200 connections now sit idle in the pool; the server still answers others
                async with httpx.AsyncClient(base_url=server.url, timeout=5) as other:
                    resp = await other.get("/v1/events", headers=server.auth("reader"))
                    assert resp.status_code == 200

        silent = [_connect(server.url) for _ in range(50)]  # connected, never send a byte
        try:
            asyncio.run(scenario())
        finally:
            for sock in silent:
                sock.close()

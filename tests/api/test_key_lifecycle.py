"""Keys expire when told to (401 KEY_EXPIRED), and know when they were last used, written at
most once a minute (issue 19, item 6)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.model.tenant import Role
from trailkeep.model.timeparse import format_time, parse_time, utcnow

pytestmark = pytest.mark.asyncio


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def key_row(client: httpx.AsyncClient, admin: str, client_id: str) -> dict[str, Any]:
    resp = await client.get("/v1/tenants/acme/keys", headers=bearer(admin))
    assert resp.status_code == 200, resp.text
    (row,) = [k for k in resp.json() if k["client_id"] == client_id]
    return row  # type: ignore[no-any-return]


class TestExpiry:
    """An expired key is refused with a message naming it; until then it works."""

    @pytest.mark.parametrize(
        ("expires", "seconds"),
        [
            pytest.param("30d", 30 * 86400, id="duration-from-now"),
            pytest.param("12h", 12 * 3600, id="hours"),
            pytest.param("now+2d", 2 * 86400, id="anchor"),
        ],
    )
    async def test_issued_with_expiry(
        self, client: httpx.AsyncClient, acme: Keys, expires: str, seconds: int
    ) -> None:
        resp = await client.post(
            "/v1/tenants/acme/keys",
            json={"role": "reader", "expires": expires},
            headers=acme.auth("admin"),
        )
        assert resp.status_code == 201, resp.text
        at = parse_time(resp.json()["expires_at"])
        assert at is not None
        assert abs((at - utcnow()).total_seconds() - seconds) < 60
        works = await client.get("/v1/events", headers=bearer(resp.json()["token"]))
        assert works.status_code == 200

    @pytest.mark.parametrize(
        "expires",
        [pytest.param("2020-01-01", id="past"), pytest.param("soon", id="unreadable")],
    )
    async def test_bad_expiry_is_refused(
        self, client: httpx.AsyncClient, acme: Keys, expires: str
    ) -> None:
        resp = await client.post(
            "/v1/tenants/acme/keys",
            json={"role": "reader", "expires": expires},
            headers=acme.auth("admin"),
        )
        assert resp.status_code in (400, 422), resp.text
        assert "expires" in resp.json()["error"]["message"]

    async def test_expired_key_gets_401(self, client: httpx.AsyncClient, acme: Keys) -> None:
        """Also when the key was verified a moment before (the credential cache)."""
        resp = await client.post(
            "/v1/tenants/acme/keys",
            json={"role": "reader", "expires": "2s"},
            headers=acme.auth("admin"),
        )
        token = resp.json()["token"]
        assert (await client.get("/v1/events", headers=bearer(token))).status_code == 200
        await asyncio.sleep(2.2)
        refused = await client.get("/v1/events", headers=bearer(token))
        assert refused.status_code == 401
        error = refused.json()["error"]
        assert error["code"] == "KEY_EXPIRED"
        assert token.split(".")[0] in error["message"]
        assert "expired at" in error["message"]

    async def test_expired_on_arrival(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        past = format_time(utcnow().replace(year=2020))
        issued = services.tenants.create_key("acme", Role.ADMIN, expires_at=past)
        resp = await client.get("/v1/events", headers=bearer(issued.token))
        assert (resp.status_code, resp.json()["error"]["code"]) == (401, "KEY_EXPIRED")


class TestLastUsed:
    """``last_used_at`` appears after a key's first use and is not rewritten per request."""

    async def test_noted_once_a_minute(self, client: httpx.AsyncClient, acme: Keys) -> None:
        reader = acme.reader.split(".")[0]
        assert (await key_row(client, acme.admin, reader))["last_used_at"] is None
        before = format_time(utcnow())
        await client.get("/v1/events", headers=acme.auth("reader"))
        first = await _wait_for_use(client, acme.admin, reader)
        assert first >= before
        await asyncio.sleep(0.05)
        for _ in range(5):
            await client.get("/v1/events", headers=acme.auth("reader"))
        await asyncio.sleep(0.3)
        assert (await key_row(client, acme.admin, reader))["last_used_at"] == first

    async def test_written_by_the_store(self, services: Services, acme: Keys) -> None:
        """The store keeps the latest time and never moves it back."""
        client_id = acme.reader.split(".")[0]
        services.store.touch_keys({client_id: "2026-12-01T00:00:00.000000Z"})
        services.store.touch_keys({client_id: "2026-11-01T00:00:00.000000Z"})
        key = services.store.get_key(client_id)
        assert key is not None
        assert key.last_used_at == "2026-12-01T00:00:00.000000Z"


async def _wait_for_use(client: httpx.AsyncClient, admin: str, client_id: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        used = (await key_row(client, admin, client_id))["last_used_at"]
        if used is not None:
            return str(used)
        await asyncio.sleep(0.05)
    raise AssertionError("last_used_at was never written")

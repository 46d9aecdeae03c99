"""Export download links work without a token, only for their export, only until they expire;
exports report their progress (issue 16, item 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Keys
from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.settings import Settings

pytestmark = pytest.mark.asyncio


async def export(client: httpx.AsyncClient, keys: Keys, body: dict[str, object]) -> dict:  # type: ignore[type-arg]
    resp = await client.post("/v1/exports", json=body, headers=keys.auth("reader"))
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def log(client: httpx.AsyncClient, keys: Keys, n: int) -> None:
    events = [{"action": f"{keys.tenant}.act", "message": f"{keys.tenant} {i}"} for i in range(n)]
    resp = await client.post(
        "/v1/events/batch", json={"events": events}, headers=keys.auth("writer")
    )
    assert resp.status_code == 201, resp.text


def with_query(link: str, **changes: str) -> str:
    """``link`` with some query parameters replaced."""
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?" + "&".join(f"{k}={v}" for k, v in query.items())


class TestDownloadLink:
    """The link is a capability: no credential needed, nothing else opened with it."""

    async def test_works_without_a_token(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await log(client, acme, 5)
        job = await export(client, acme, {"format": "csv"})
        with_token = await client.get(job["download_url"], headers=acme.auth("reader"))
        anonymous = await client.get(job["download_link"])
        assert anonymous.status_code == 200, anonymous.text
        assert anonymous.content == with_token.content
        assert anonymous.content.count(b"acme.act") == 5
        sig = parse_qs(urlsplit(job["download_link"]).query)["sig"][0]
        assert len(sig) >= 43  # base64url of at least 256 bits

    async def test_without_link_or_token_is_401(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        job = await export(client, acme, {})
        resp = await client.get(job["download_url"])
        assert resp.status_code == 401

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param({"sig": "A" * 43}, id="guessed-sig"),
            pytest.param({"expires": "99999999999"}, id="later-expiry"),
        ],
    )
    async def test_a_wrong_link_is_refused(
        self, client: httpx.AsyncClient, acme: Keys, change: dict[str, str]
    ) -> None:
        job = await export(client, acme, {})
        resp = await client.get(with_query(job["download_link"], **change))
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "INVALID_LINK"

    async def test_flipped_signature_bit(self, client: httpx.AsyncClient, acme: Keys) -> None:
        job = await export(client, acme, {})
        sig = parse_qs(urlsplit(job["download_link"]).query)["sig"][0]
        flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
        resp = await client.get(with_query(job["download_link"], sig=flipped))
        assert resp.json()["error"]["code"] == "INVALID_LINK"

    async def test_half_a_link_is_400(self, client: httpx.AsyncClient, acme: Keys) -> None:
        job = await export(client, acme, {})
        sig = parse_qs(urlsplit(job["download_link"]).query)["sig"][0]
        resp = await client.get(f"{job['download_url']}?sig={sig}")
        assert resp.status_code == 400

    async def test_never_crosses_tenants(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        """acme's link with globex's export id (or the other way round) opens nothing."""
        await log(client, globex, 3)
        mine, theirs = await export(client, acme, {}), await export(client, globex, {})
        query = urlsplit(mine["download_link"]).query
        resp = await client.get(f"/v1/exports/{theirs['id']}/download?{query}")
        assert resp.status_code == 401
        assert b"globex" not in resp.content
        # globex's own link opens globex's export only.
        theirs_file = await client.get(theirs["download_link"])
        assert theirs_file.status_code == 200
        assert b"acme" not in theirs_file.content.replace(b"acme.act", b"")


@pytest_asyncio.fixture
async def short_links(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """An app whose download links live one second."""
    services = Services.build(settings.model_copy(update={"export_link_ttl": 1.0}))
    transport = httpx.ASGITransport(app=create_app(settings, services))
    async with httpx.AsyncClient(transport=transport, base_url="http://trailkeep.test") as c:
        yield c, services
    services.close()


class TestExpiry:
    """A link stops working when it expires; a fresh one is issued on every GET."""

    async def test_expired_link_is_refused(
        self, short_links: tuple[httpx.AsyncClient, Services]
    ) -> None:
        from tests.conftest import make_keys

        client, services = short_links
        keys = make_keys(services, "acme")
        job = await export(client, keys, {})
        await asyncio.sleep(2.1)
        resp = await client.get(job["download_link"])
        assert resp.status_code == 401
        error = resp.json()["error"]
        assert error["code"] == "LINK_EXPIRED"
        assert "expired" in error["message"]
        fresh = await client.get(f"/v1/exports/{job['id']}", headers=keys.auth("reader"))
        assert (await client.get(fresh.json()["download_link"])).status_code == 200


class TestProgress:
    """``GET /v1/exports/{id}`` reports the events written by the download, and when done."""

    async def test_progress_after_a_download(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await log(client, acme, 7)
        job = await export(client, acme, {"action": "acme.act", "format": "jsonl"})
        assert job["progress"] == {
            "events_written": 0,
            "events_total": None,
            "state": "not_started",
            "downloads": 0,
        }
        await client.get(job["download_link"])
        resp = await client.get(
            f"/v1/exports/{job['id']}", params={"count": "true"}, headers=acme.auth("reader")
        )
        assert resp.json()["progress"] == {
            "events_written": 7,
            "events_total": 7,
            "state": "complete",
            "downloads": 1,
        }

    async def test_progress_while_streaming(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        """Between two pages of a download, the export reads as running, part written."""
        for _ in range(3):
            await log(client, acme, 1000)
        job = services.exports.get("acme", (await export(client, acme, {"format": "csv"}))["id"])
        chunks = services.exports.lines(job)
        next(chunks)  # the header row and the first page
        running = services.exports.progress(job)
        assert (running.state, running.written) == ("running", 1000)
        for _ in chunks:
            pass
        done = services.exports.progress(job)
        assert (done.state, done.written, done.downloads) == ("complete", 3000, 1)

"""The viewer's pages as the server renders them (in-process, no browser needed)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

VIEWER = Path(__file__).resolve().parents[2] / "src" / "trailkeep" / "viewer"


class TestRoutes:
    """`/` leads to the viewer; pages render their URL state, escaped, under a strict CSP."""

    @pytest.mark.asyncio
    @pytest.mark.parametrize("path", [pytest.param("/", id="root"), pytest.param("/ui", id="ui")])
    async def test_redirects(self, client: httpx.AsyncClient, path: str) -> None:
        response = await client.get(path)
        assert response.status_code == 307
        assert response.headers["location"] == "/ui/"

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("/ui/", id="events"),
            pytest.param("/ui/signin", id="signin"),
            pytest.param("/ui/events/evt_01ABC", id="event"),
        ],
    )
    async def test_pages_need_no_key_and_forbid_other_origins(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "connect-src 'self'" in policy

    @pytest.mark.asyncio
    async def test_url_state_is_rendered_escaped(self, client: httpx.AsyncClient) -> None:
        response = await client.get(
            "/ui/",
            params={"q": '"><script>alert(1)</script>', "start": "now-1h", "category": "agents"},
        )
        assert "<script>alert(1)" not in response.text
        assert "&#34;&gt;&lt;script&gt;" in response.text or "&quot;&gt;&lt;script" in response.text
        assert 'value="now-1h"' in response.text
        assert 'data-remove="category" data-value="agents"' in response.text

    @pytest.mark.asyncio
    async def test_event_id_is_escaped(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ui/events/<script>x")
        assert response.status_code == 200
        assert "<script>x" not in response.text
        assert "&lt;script&gt;x" in response.text

    @pytest.mark.asyncio
    async def test_too_long_an_id_is_a_clear_error(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ui/events/" + "x" * 300)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "INVALID_REQUEST"

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        "asset",
        [
            pytest.param("js/events.js", id="script"),
            pytest.param("css/viewer.css", id="style"),
            pytest.param("vendor/noble-ed25519.js", id="ed25519"),
        ],
    )
    async def test_assets_are_served(self, client: httpx.AsyncClient, asset: str) -> None:
        response = await client.get(f"/ui/static/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 1000


_EXTERNAL = re.compile(r"""(?:src|href|import|url|fetch)\s*\(?\s*["'`]?(?:https?:)?//""")


class TestSelfContained:
    """Nothing in the templates or scripts points outside the server's origin."""

    @pytest.mark.parametrize(
        "path",
        sorted(p for p in VIEWER.rglob("*") if p.suffix in {".html", ".js", ".css"}),
        ids=lambda p: p.name,
    )
    def test_no_external_reference(self, path: Path) -> None:
        assert not _EXTERNAL.search(path.read_text()), f"{path.name} refers to another origin"

"""/metrics families and /docs served with no Internet access (issue 19, item 8)."""

from __future__ import annotations

import re
import sys

import httpx
import pytest

from tests.conftest import Keys
from trailkeep.api.app import SWITCH_INTERVAL, create_app
from trailkeep.api.services import Services
from trailkeep.settings import Settings

pytestmark = pytest.mark.asyncio


class TestMetrics:
    """/metrics shows the process, GC, in-flight requests, the writer and checkpoint lag."""

    async def test_families(self, client: httpx.AsyncClient, acme: Keys) -> None:
        for _ in range(3):
            resp = await client.post(
                "/v1/events", json={"action": "a"}, headers=acme.auth("writer")
            )
            assert resp.status_code == 201
        await client.get("/openapi.json")
        await client.get("/docs")
        await client.get("/static/docs/swagger-ui.css")
        text = (await client.get("/metrics")).text
        families = set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))
        for name in (
            "process_cpu_seconds", "process_resident_memory_bytes", "python_gc_collections",
            "python_info", "trailkeep_http_requests_in_flight", "trailkeep_writer_group_events",
            "trailkeep_writer_queue_depth", "trailkeep_checkpoint_lag_events",
            "trailkeep_checkpoint_lagging_tenants", "trailkeep_http_requests",
        ):  # fmt: skip
            assert name in families or f"{name}_total" in families, name
        assert len(families) >= 10
        assert 'route="/openapi.json"' in text
        assert 'route="/docs"' in text
        assert 'route="/static/docs/{asset}"' in text
        assert "trailkeep_checkpoint_lag_events 3.0" in text  # no checkpointer runs in-process
        assert re.search(r"^trailkeep_writer_group_events_count [1-9]", text, re.MULTILINE)


class TestOfflineDocs:
    """/docs loads Swagger UI from the server itself: no CDN, so it works offline."""

    async def test_no_cdn(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        # Every URL on the page is the server's own (the validator badge is off).
        assert '"validatorUrl": null' in page.text
        assert re.findall(r"https?://", page.text) == []
        assets = re.findall(r'(?:src|href)="(/static/docs/[^"]+)"', page.text)
        assert len(assets) >= 2
        for asset in assets:
            resp = await client.get(asset)
            assert resp.status_code == 200, asset
            assert len(resp.content) > 100
        assert (await client.get("/docs/oauth2-redirect")).status_code == 200
        assert (await client.get("/redoc")).status_code == 404


class TestGilSwitchInterval:
    """Every server process shortens the GIL switch interval when it starts, the app's
    lifespan (each ``serve --workers N`` worker is a fresh interpreter), not only the CLI."""

    async def test_set_at_startup(self, settings: Settings, services: Services) -> None:
        before = sys.getswitchinterval()
        sys.setswitchinterval(0.005)  # a fresh interpreter's default
        try:
            app = create_app(settings, services)
            async with app.router.lifespan_context(app):
                assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
        finally:
            sys.setswitchinterval(before)

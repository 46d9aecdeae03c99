"""Event timestamps: any past, at most ``max_future_skew`` ahead (issue 14, item 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import Keys
from trailkeep.api.app import create_app
from trailkeep.api.services import Services
from trailkeep.errors import ValidationFailedError
from trailkeep.model.timeparse import format_time, parse_time
from trailkeep.service import events as events_module
from trailkeep.service.events import Limits, prepare_event
from trailkeep.settings import Settings


def ahead(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def when(timestamp: str | timedelta) -> str:
    """A timestamp, or one this far ahead of now: read when the test runs, not at collection."""
    return (
        ahead(seconds=timestamp.total_seconds()) if isinstance(timestamp, timedelta) else timestamp
    )


@pytest.mark.asyncio
class TestFutureBound:
    """A timestamp more than 24 h ahead is a 422 naming the field and the bound."""

    @pytest.mark.parametrize(
        "timestamp",
        [
            pytest.param("2099-01-01", id="2099-date"),
            pytest.param("2099-01-01T00:00:00Z", id="2099-rfc3339"),
            pytest.param("9999-12-31T23:59:59.999999Z", id="year-9999"),
            pytest.param("now+2d", id="relative-2-days"),
            pytest.param(timedelta(hours=24, minutes=5), id="24h05m-ahead"),
        ],
    )
    async def test_refused(
        self, client: httpx.AsyncClient, acme: Keys, timestamp: str | timedelta
    ) -> None:
        resp = await client.post(
            "/v1/events", json={"action": "a", "timestamp": when(timestamp)},
            headers=acme.auth("writer"),
        )  # fmt: skip
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert error["code"] == "VALIDATION_FAILED"
        assert error["message"].startswith("event.timestamp: ")
        assert "more than 24 h ahead of the server's clock" in error["message"]
        assert "the latest accepted now is" in error["message"]
        listed = await client.get("/v1/events", headers=acme.auth("reader"))
        assert listed.json()["events"] == []

    async def test_batch_names_the_index_and_writes_nothing(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        events = [{"action": "a"}, {"action": "b", "timestamp": "2099-01-01"}]
        resp = await client.post(
            "/v1/events/batch", json={"events": events}, headers=acme.auth("writer")
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["message"].startswith("events[1].timestamp: ")
        listed = await client.get("/v1/events", headers=acme.auth("reader"))
        assert listed.json()["events"] == []

    @pytest.mark.parametrize(
        ("timestamp", "stored"),
        [
            pytest.param("0001-01-01", "0001-01-01T00:00:00.000000Z", id="year-1"),
            pytest.param("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z", id="epoch"),
            pytest.param("now-3650d", None, id="ten-years-ago"),
            pytest.param(timedelta(hours=23), None, id="23h-ahead"),
        ],
    )
    async def test_accepted(
        self, client: httpx.AsyncClient, acme: Keys, timestamp: str | timedelta, stored: str | None
    ) -> None:
        resp = await client.post(
            "/v1/events", json={"action": "a", "timestamp": when(timestamp)},
            headers=acme.auth("writer"),
        )  # fmt: skip
        assert resp.status_code == 201, resp.text
        if stored is not None:
            assert resp.json()["timestamp"] == stored

    async def test_bound_is_a_setting(
        self, settings: Settings, services: Services, acme: Keys
    ) -> None:
        tight = settings.model_copy(update={"max_future_skew": 60.0})
        tight_services = Services.build(tight)
        try:
            app = create_app(tight, tight_services)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as c:
                late = await c.post(
                    "/v1/events",
                    json={"action": "a", "timestamp": ahead(minutes=2)},
                    headers=acme.auth("writer"),
                )
                assert late.status_code == 422, late.text
                assert "more than 60 s ahead" in late.json()["error"]["message"]
                soon = await c.post(
                    "/v1/events",
                    json={"action": "a", "timestamp": ahead(seconds=30)},
                    headers=acme.auth("writer"),
                )
                assert soon.status_code == 201, soon.text
        finally:
            tight_services.close()


class TestPrepareEvent:
    """Every ingest route (native and dialects) prepares events here, so the bound holds for all."""

    def test_prepare_refuses(self) -> None:
        with pytest.raises(ValidationFailedError, match=r"events\[7\]\.timestamp: .* 24 h ahead"):
            prepare_event({"action": "a", "timestamp": "2099-01-01"}, Limits(), index=7)

    def test_zero_skew_refuses_anything_ahead(self) -> None:
        with pytest.raises(ValidationFailedError, match="more than 0 s ahead"):
            prepare_event({"action": "a", "timestamp": ahead(seconds=5)}, Limits(max_future_skew=0))

    def test_skew_beyond_the_calendar_bounds_nothing(self) -> None:
        event = prepare_event(
            {"action": "a", "timestamp": "9999-12-31"}, Limits(max_future_skew=1e15)
        )
        assert event.content["timestamp"] == "9999-12-31T00:00:00.000000Z"

    @pytest.mark.parametrize(
        ("timestamp", "accepted"),
        [
            pytest.param("2026-01-01T00:00:00.999999Z", True, id="second-before-the-bound"),
            pytest.param("2026-01-01T00:00:01.400000Z", True, id="in-the-bound's-second"),
            pytest.param("2026-01-01T00:00:01.500000Z", True, id="at-the-bound"),
            pytest.param("2026-01-01T00:00:01.500001Z", False, id="just-past-the-bound"),
            pytest.param("2026-01-01T00:00:02Z", False, id="second-after-the-bound"),
        ],
    )
    def test_bound_exact_on_the_fast_path(
        self, monkeypatch: pytest.MonkeyPatch, timestamp: str, accepted: bool
    ) -> None:
        """The common ``...Z`` form is checked without a datetime, to the microsecond."""
        now_ns = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 10**9 + 500_000_000
        monkeypatch.setattr(events_module, "_now_ns", lambda: now_ns)
        limits = Limits(max_future_skew=1.0)
        if accepted:
            event = prepare_event({"action": "a", "timestamp": timestamp}, limits)
            expected = parse_time(timestamp)
            assert expected is not None
            assert event.content["timestamp"] == format_time(expected)
        else:
            with pytest.raises(ValidationFailedError, match="more than 1 s ahead"):
                prepare_event({"action": "a", "timestamp": timestamp}, limits)

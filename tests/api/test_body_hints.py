"""A body of the wrong kind gets an error that says what to send (issue 19, item 4)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import Keys

pytestmark = pytest.mark.asyncio

EVENT = b'{"action": "login"}'


class TestWholeBodyHints:
    """A missing JSON Content-Type and an array where an object goes name their fix."""

    @pytest.mark.parametrize(
        ("path", "body", "content_type", "status", "code", "needle"),
        [
            pytest.param("/v1/events", EVENT, None, 415, "UNSUPPORTED_MEDIA_TYPE",
                         "Content-Type: application/json", id="no-content-type"),
            pytest.param("/v1/events", EVENT, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE",
                         "got Content-Type text/plain", id="text-plain"),
            pytest.param("/v1/events", b'[{"action": "a"}]', "application/json", 422,
                         "VALIDATION_FAILED", "/v1/events/batch", id="array-to-events"),
            pytest.param("/v1/events/batch", b'[{"action": "a"}]', "application/json", 422,
                         "VALIDATION_FAILED", '{"events": [...]}', id="array-to-batch"),
            pytest.param("/v1/events/batch", b'{"events": [{"action": "a"}]}', None, 415,
                         "UNSUPPORTED_MEDIA_TYPE", "Content-Type", id="batch-no-content-type"),
        ],
    )  # fmt: skip
    async def test_hint(
        self,
        client: httpx.AsyncClient,
        acme: Keys,
        path: str,
        body: bytes,
        content_type: str | None,
        status: int,
        code: str,
        needle: str,
    ) -> None:
        headers = acme.auth("writer")
        if content_type:
            headers["Content-Type"] = content_type
        resp = await client.post(path, content=body, headers=headers)
        assert resp.status_code == status, resp.text
        error = resp.json()["error"]
        assert error["code"] == code
        assert needle in error["message"]
        listed = await client.get("/v1/events", headers=acme.auth("reader"))
        assert listed.json()["events"] == []

    async def test_json_still_accepted(self, client: httpx.AsyncClient, acme: Keys) -> None:
        headers = {**acme.auth("writer"), "Content-Type": "application/json; charset=utf-8"}
        resp = await client.post("/v1/events", content=EVENT, headers=headers)
        assert resp.status_code == 201, resp.text


class TestFacetTimes:
    """Histogram bucket starts are fixed-width timestamps, like every time the server emits."""

    @pytest.mark.parametrize(
        "times",
        [
            pytest.param(["2026-12-06T23:32:05Z", "2026-12-06T23:40:00Z"], id="minutes"),
            pytest.param(["2026-12-01T10:00:00Z", "2026-12-03T09:00:00Z"], id="hours"),
            pytest.param(["2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z"], id="days-or-months"),
        ],
    )
    async def test_bucket_starts(
        self, client: httpx.AsyncClient, acme: Keys, times: list[str]
    ) -> None:
        for when in times:
            resp = await client.post("/v1/events", json={"action": "a", "timestamp": when},
                                     headers=acme.auth("writer"))  # fmt: skip
            assert resp.status_code == 201, resp.text
        body = (await client.get("/v1/facets", headers=acme.auth("reader"))).json()
        starts = [b["start"] for b in body["histogram"]["buckets"]]
        assert starts
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", s) for s in starts)

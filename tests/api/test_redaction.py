"""Erasure records: the trace of an erasure can itself never be erased (issue 14, item 3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Keys

pytestmark = pytest.mark.asyncio


async def erase_email(client: httpx.AsyncClient, keys: Keys) -> dict[str, Any]:
    """Write an event, erase its actor.email; return the erasure's ``event.redact`` record."""
    written = await client.post(
        "/v1/events",
        json={"action": "login", "actor": {"id": "u1", "email": "u1@x.io"}},
        headers=keys.auth("writer"),
    )
    assert written.status_code == 201, written.text
    erased = await client.post(
        f"/v1/events/{written.json()['id']}/redact",
        json={"fields": ["actor.email"], "reason": "GDPR request 17"},
        headers=keys.auth("admin"),
    )
    assert erased.status_code == 200, erased.text
    listed = await client.get(
        "/v1/events", params={"action": "event.redact"}, headers=keys.auth("reader")
    )
    (record,) = listed.json()["events"]
    return dict(record)


class TestErasureRecords:
    """Redacting an ``event.redact`` record is a 409 that changes nothing."""

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param(["metadata"], id="its-field-list"),
            pytest.param(["message"], id="its-reason"),
            pytest.param(["target"], id="the-erased-event-it-names"),
            pytest.param(["actor.id"], id="who-erased"),
        ],
    )
    async def test_redacting_an_erasure_record_is_a_conflict(
        self, client: httpx.AsyncClient, acme: Keys, fields: list[str]
    ) -> None:
        record = await erase_email(client, acme)
        resp = await client.post(
            f"/v1/events/{record['id']}/redact",
            json={"fields": fields, "reason": "cover tracks"},
            headers=acme.auth("admin"),
        )
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error["code"] == "CONFLICT"
        assert "erasure records cannot be erased" in error["message"]
        again = await client.get(f"/v1/events/{record['id']}", headers=acme.auth("reader"))
        assert again.json() == record
        listed = await client.get(
            "/v1/events", params={"action": "event.redact"}, headers=acme.auth("reader")
        )
        assert len(listed.json()["events"]) == 1  # the refusal wrote no second record

    async def test_clients_cannot_forge_the_reserved_shape(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        """A client event shaped like an erasure record could never be erased: refused."""
        forged = {"action": "event.redact", "category": "system", "actor": {"email": "a@x.io"}}
        single = await client.post("/v1/events", json=forged, headers=acme.auth("writer"))
        assert single.status_code == 422, single.text
        assert "reserved" in single.json()["error"]["message"]
        batch = await client.post(
            "/v1/events/batch",
            json={"events": [{"action": "ok"}, forged]},
            headers=acme.auth("writer"),
        )
        assert batch.status_code == 422
        assert batch.json()["error"]["message"].startswith("events[1]:")

    async def test_same_action_in_another_category_stays_erasable(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        own = {"action": "event.redact", "category": "app", "actor": {"email": "a@x.io"}}
        written = await client.post("/v1/events", json=own, headers=acme.auth("writer"))
        assert written.status_code == 201, written.text
        erased = await client.post(
            f"/v1/events/{written.json()['id']}/redact",
            json={"fields": ["actor.email"]},
            headers=acme.auth("admin"),
        )
        assert erased.status_code == 200, erased.text

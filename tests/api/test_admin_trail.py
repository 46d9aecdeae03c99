"""Every administrative act writes exactly one audit event of the right shape, in the right log
(issue 16, item 5): tenants, keys, settings, exports; the operator log; no forgeries."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.model.tenant import OPERATOR_LOG
from trailkeep.query.filters import Sort

pytestmark = pytest.mark.asyncio


def bearer(token: str, org: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if org is not None:
        headers["X-Org-ID"] = org
    return headers


async def system_events(client: httpx.AsyncClient, token: str, org: str) -> list[dict[str, Any]]:
    """The server's records in ``org``'s log, oldest first (read with an operator key)."""
    resp = await client.get(
        "/v1/events",
        params={"category": "system", "sort": "asc", "limit": 100},
        headers=bearer(token, org),
    )
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()["events"]
    return events


def client_id(token: str) -> str:
    return token.split(".")[0]


class TestTenantCreation:
    """``POST /v1/tenants`` writes ``tenant.create`` to the operator log; the tenant's own
    log stays empty."""

    async def test_one_event_in_the_operator_log(
        self, client: httpx.AsyncClient, operator_token: str
    ) -> None:
        resp = await client.post(
            "/v1/tenants", json={"name": "initech"}, headers=bearer(operator_token)
        )
        assert resp.status_code == 201, resp.text
        (event,) = await system_events(client, operator_token, OPERATOR_LOG)
        assert event["action"] == "tenant.create"
        assert event["outcome"] == "success"
        assert event["actor"] == {
            "id": client_id(operator_token),
            "type": "api_key",
            "role": "operator",
        }
        assert event["target"] == {"id": "initech", "type": "tenant"}
        assert event["tenant_id"] == OPERATOR_LOG
        own = await client.get("/v1/events", headers=bearer(operator_token, "initech"))
        assert own.json()["events"] == []

    async def test_a_refused_creation_writes_nothing(
        self, client: httpx.AsyncClient, operator_token: str, acme: Keys
    ) -> None:
        resp = await client.post(
            "/v1/tenants", json={"name": "acme"}, headers=bearer(operator_token)
        )
        assert resp.status_code == 409
        resp = await client.get("/v1/events", headers=bearer(operator_token, OPERATOR_LOG))
        assert resp.status_code in (200, 404)  # the operator log may not exist yet
        if resp.status_code == 200:
            assert resp.json()["events"] == []


class TestKeys:
    """Issuing and revoking a key each write one event to the key's tenant: no secret in it."""

    @pytest.mark.parametrize("who", [pytest.param("operator"), pytest.param("admin")])
    async def test_create_then_revoke(
        self, client: httpx.AsyncClient, operator_token: str, acme: Keys, who: str
    ) -> None:
        token = operator_token if who == "operator" else acme.admin
        created = await client.post(
            "/v1/tenants/acme/keys",
            json={"role": "reader", "name": "dashboards", "expires": "30d"},
            headers=bearer(token),
        )
        assert created.status_code == 201, created.text
        issued = created.json()
        revoked = await client.delete(
            f"/v1/tenants/acme/keys/{issued['client_id']}", headers=bearer(token)
        )
        assert revoked.status_code == 204
        events = await system_events(client, operator_token, "acme")
        assert [e["action"] for e in events] == ["key.create", "key.revoke"]
        target = {"id": issued["client_id"], "type": "api_key", "name": "dashboards"}
        assert all(e["target"] == target for e in events)
        assert all(e["actor"]["id"] == client_id(token) for e in events)
        assert events[0]["metadata"] == {"role": "reader", "expires_at": issued["expires_at"]}
        raw = orjson.dumps(events)
        assert issued["client_secret"].encode() not in raw
        assert issued["client_secret"].split("_", 1)[1].encode() not in raw

    async def test_another_tenants_admin_is_refused(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys, operator_token: str
    ) -> None:
        resp = await client.post(
            "/v1/tenants/globex/keys", json={"role": "admin"}, headers=bearer(acme.admin)
        )
        assert resp.status_code == 403
        assert await system_events(client, operator_token, "globex") == []

    async def test_operator_key_acts_go_to_the_operator_log(self, services: Services) -> None:
        from trailkeep.model.tenant import Role
        from trailkeep.service.admin_trail import Actor

        issued = services.admin.create_key(None, Role.OPERATOR, Actor("ops", "cli"))
        services.admin.revoke_key(issued.key.client_id, None, Actor("ops", "cli"))
        page = services.store.select(OPERATOR_LOG, _all())
        assert [(e.content["action"], e.content["actor"]) for e in page] == [
            ("key.create", {"id": "ops", "type": "cli"}),
            ("key.revoke", {"id": "ops", "type": "cli"}),
        ]


def _all() -> Any:
    from trailkeep.query.filters import EventQuery

    return EventQuery(limit=100, by_seq=True, sort=Sort.ASC)


RETENTION = [
    pytest.param({"retention": "7d"}, 7, id="preset-7d"),
    pytest.param({"retention": "community"}, 7, id="tier-community"),
    pytest.param({"retention": "30d"}, 30, id="preset-30d"),
    pytest.param({"retention": "Professional"}, 30, id="tier-professional-any-case"),
    pytest.param({"retention": "365d"}, 365, id="preset-365d"),
    pytest.param({"retention": "enterprise"}, 365, id="tier-enterprise"),
    pytest.param({"retention_days": 90}, 90, id="days"),
]
BAD_SETTINGS = [
    pytest.param({"retention": "14d"}, id="unknown-preset"),
    pytest.param({"retention_days": 0}, id="zero-days"),
    pytest.param({"retention_days": "30"}, id="days-as-text"),
    pytest.param({"retention_days": 30, "retention": "30d"}, id="both"),
    pytest.param({"legal_hold": "yes"}, id="hold-not-boolean"),
    pytest.param({"legal_hold": None}, id="hold-null"),
    pytest.param({"pruning": False}, id="unknown-setting"),
]


class TestSettings:
    """Retention (days or a preset) and the legal hold: admin only, validated, audited."""

    @pytest.mark.parametrize(("body", "days"), RETENTION)
    async def test_retention_is_stored_as_days(
        self, client: httpx.AsyncClient, acme: Keys, body: dict[str, Any], days: int
    ) -> None:
        resp = await client.put("/v1/tenant", json=body, headers=acme.auth("admin"))
        assert resp.status_code == 200, resp.text
        assert resp.json()["settings"] == {"retention_days": days}

    @pytest.mark.parametrize("body", BAD_SETTINGS)
    async def test_bad_values_are_422_and_change_nothing(
        self, client: httpx.AsyncClient, acme: Keys, operator_token: str, body: dict[str, Any]
    ) -> None:
        resp = await client.put("/v1/tenant", json=body, headers=acme.auth("admin"))
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "VALIDATION_FAILED"
        tenant = await client.get("/v1/tenant", headers=acme.auth("admin"))
        assert tenant.json()["settings"] == {}
        assert await system_events(client, operator_token, "acme") == []

    @pytest.mark.parametrize("role", ["reader", "writer"])
    async def test_only_admins(self, client: httpx.AsyncClient, acme: Keys, role: str) -> None:
        resp = await client.put("/v1/tenant", json={"legal_hold": True}, headers=acme.auth(role))
        assert resp.status_code == 403

    async def test_each_change_is_one_event(
        self, client: httpx.AsyncClient, acme: Keys, operator_token: str
    ) -> None:
        admin = acme.auth("admin")
        await client.put("/v1/tenant", json={"retention": "30d"}, headers=admin)
        await client.put("/v1/tenant", json={"retention_days": 30}, headers=admin)  # no change
        await client.put("/v1/tenant", json={"legal_hold": True}, headers=admin)
        both = await client.put(
            "/v1/tenant", json={"legal_hold": False, "retention": "forever"}, headers=admin
        )
        assert both.json()["settings"] == {"retention_days": None, "legal_hold": False}
        events = await system_events(client, operator_token, "acme")
        shapes = [(e["action"], e["metadata"], e.get("old"), e.get("new")) for e in events]
        assert shapes == [
            ("tenant.settings", {"settings": ["retention_days"]}, {"retention_days": None},
             {"retention_days": 30}),
            ("legal_hold.set", {"legal_hold": True}, None, None),
            ("legal_hold.set", {"legal_hold": False}, None, None),
            ("tenant.settings", {"settings": ["retention_days"]}, {"retention_days": 30},
             {"retention_days": None}),
        ]  # fmt: skip
        actor = {"id": client_id(acme.admin), "type": "api_key", "role": "admin"}
        assert all(e["actor"] == actor for e in events)
        assert all(e["target"] == {"id": "acme", "type": "tenant"} for e in events)


class TestExportsAndRedactions:
    """An export and a redaction are each one event in the tenant's log."""

    async def test_export_create(
        self, client: httpx.AsyncClient, acme: Keys, operator_token: str
    ) -> None:
        resp = await client.post(
            "/v1/exports", json={"action": "login", "format": "csv"}, headers=acme.auth("reader")
        )
        assert resp.status_code == 201, resp.text
        export = resp.json()
        (event,) = await system_events(client, operator_token, "acme")
        assert event["action"] == "export.create"
        assert event["target"] == {"id": export["id"], "type": "export"}
        assert event["metadata"]["format"] == "csv"
        assert event["metadata"]["filters"] == {"action": ["login"]}
        assert event["seq"] >= export["size"]  # outside its own snapshot

    async def test_redaction(
        self, client: httpx.AsyncClient, acme: Keys, operator_token: str
    ) -> None:
        logged = await client.post(
            "/v1/events",
            json={"action": "login", "actor": {"email": "a@x.io"}},
            headers=acme.auth("writer"),
        )
        event_id = logged.json()["id"]
        resp = await client.post(
            f"/v1/events/{event_id}/redact",
            json={"fields": ["actor.email"]},
            headers=acme.auth("admin"),
        )
        assert resp.status_code == 200, resp.text
        (event,) = await system_events(client, operator_token, "acme")
        assert (event["action"], event["target"]) == (
            "event.redact",
            {"id": event_id, "type": "event"},
        )


FORGED = [
    pytest.param({"action": "key.create"}, id="key.create"),
    pytest.param({"action": "tenant.settings"}, id="tenant.settings"),
    pytest.param({"action": "legal_hold.set"}, id="legal_hold.set"),
    pytest.param({"action": "retention.prune"}, id="retention.prune"),
    pytest.param({"action": "export.create"}, id="export.create"),
    pytest.param({"action": "tenant.anything"}, id="any-action-of-the-namespace"),
    pytest.param({"action": "log.accept_database"}, id="log.accept_database"),
]


class TestForgery:
    """Clients cannot write an event of the server's reserved shape, in any tenant."""

    @pytest.mark.parametrize("body", FORGED)
    async def test_refused(
        self, client: httpx.AsyncClient, acme: Keys, body: dict[str, Any]
    ) -> None:
        forged = {**body, "category": "system", "actor": {"id": "attacker"}}
        single = await client.post("/v1/events", json=forged, headers=acme.auth("writer"))
        assert single.status_code == 422, single.text
        assert "reserved" in single.json()["error"]["message"]
        batch = await client.post(
            "/v1/events/batch", json={"events": [{"action": "ok"}, forged]},
            headers=acme.auth("admin"),
        )  # fmt: skip
        assert batch.status_code == 422
        assert "events[1]" in batch.json()["error"]["message"]

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({"action": "system.start", "category": "system"}, id="own-system-action"),
            pytest.param({"action": "key.create", "category": "users"}, id="other-category"),
        ],
    )
    async def test_the_rest_of_category_system_stays_open(
        self, client: httpx.AsyncClient, acme: Keys, body: dict[str, Any]
    ) -> None:
        resp = await client.post("/v1/events", json=body, headers=acme.auth("writer"))
        assert resp.status_code == 201, resp.text


class TestOperatorLog:
    """The reserved operator log: readable by operators, writable by nobody, no tenant's."""

    async def test_nobody_writes_or_creates_it(
        self, client: httpx.AsyncClient, operator_token: str, acme: Keys
    ) -> None:
        await client.post("/v1/tenants", json={"name": "initech"}, headers=bearer(operator_token))
        write = await client.post(
            "/v1/events", json={"action": "x"}, headers=bearer(operator_token, OPERATOR_LOG)
        )
        assert write.status_code == 403
        settings = await client.put(
            "/v1/tenant", json={"legal_hold": True}, headers=bearer(operator_token, OPERATOR_LOG)
        )
        assert settings.status_code == 403
        create = await client.post(
            "/v1/tenants", json={"name": OPERATOR_LOG}, headers=bearer(operator_token)
        )
        assert create.status_code == 422
        key = await client.post(
            f"/v1/tenants/{OPERATOR_LOG}/keys", json={"role": "reader"},
            headers=bearer(operator_token),
        )  # fmt: skip
        assert key.status_code in (403, 422)
        tenant_key = await client.get(
            "/v1/events", headers={**acme.auth("admin"), "X-Org-ID": OPERATOR_LOG}
        )
        assert tenant_key.status_code == 403
        listed = await client.get("/v1/tenants", headers=bearer(operator_token))
        assert OPERATOR_LOG not in [t["id"] for t in listed.json()]

    async def test_verified_like_any_log(
        self, client: httpx.AsyncClient, operator_token: str, services: Services
    ) -> None:
        from trailkeep.service.audit import audit_tenant

        for name in ("initech", "umbrella"):
            await client.post("/v1/tenants", json={"name": name}, headers=bearer(operator_token))
        services.log.sign_pending()
        origin = f"{services.log.server_name}/{OPERATOR_LOG}"
        report = audit_tenant(services.store, OPERATOR_LOG, services.log.signer.verifier(), origin)
        assert report.ok, report.problems
        assert services.store.log_size(OPERATOR_LOG) == 2
        checkpoint = await client.get(
            "/v1/log/checkpoint", headers=bearer(operator_token, OPERATOR_LOG)
        )
        assert checkpoint.status_code == 200
        assert checkpoint.text.splitlines()[:2] == [origin, "2"]

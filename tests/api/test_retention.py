"""Retention over HTTP, on every backend: ``POST /v1/tenant/prune`` prunes the expired events,
every proof still verifies, and a pruned event reads as pruned on every surface (native,
dumps, dialects) — never as missing, never as a 500."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.client.verify import verify_dump, verify_event
from trailkeep.merkle import RFC9162, verify_consistency, verify_inclusion
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.query.filters import EventQuery
from trailkeep.service.audit import audit_tenant
from trailkeep.service.dump import dump_lines

#: Events 0..EVENTS-1; every third one (seq % 3 == 1) is recent, the others expired.
EVENTS = 48
#: The admin trail's records a test adds after the seed: setting the retention
#: (``tenant.settings``, seq EVENTS) and the prune run (``retention.prune``).
SETTING, PRUNE_RECORD = EVENTS, EVENTS + 1


def _content(i: int) -> dict[str, Any]:
    recent = i % 3 == 1
    when = format_time(utcnow()) if recent else f"2020-01-{1 + i % 28:02d}T10:00:{i % 60:02d}Z"
    return {
        "timestamp": when,
        "action": f"doc.{'read' if i % 2 else 'update'}",
        "category": "documents",
        "outcome": "success" if i % 4 else "failure",
        "actor": {"id": f"u-{i % 5}", "email": f"u{i % 5}@x.io"},
        "target": {"id": f"doc-{i}", "type": "document"},
        "message": f"event number {i} about invoices",
        "metadata": {"group_id": "g1", "category_name": "c1", "n": i},
    }


async def seed(client: httpx.AsyncClient, keys: Keys) -> list[dict[str, Any]]:
    resp = await client.post(
        "/v1/events/batch",
        json={"events": [_content(i) for i in range(EVENTS)]},
        headers=keys.auth("writer"),
    )
    assert resp.status_code == 201, resp.text
    events: list[dict[str, Any]] = resp.json()["events"]
    return events


def expired(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["seq"] % 3 != 1]


async def set_retention(client: httpx.AsyncClient, keys: Keys, days: int = 30) -> None:
    resp = await client.put("/v1/tenant", json={"retention_days": days}, headers=keys.auth("admin"))
    assert resp.status_code == 200, resp.text


async def prune(client: httpx.AsyncClient, keys: Keys, **body: Any) -> httpx.Response:
    return await client.post("/v1/tenant/prune", json=body, headers=keys.auth("admin"))


@pytest.mark.asyncio
class TestPruneRoute:
    """An admin prunes now; the run reports what went and is itself an audit event."""

    async def test_prunes_the_expired_and_reports_them(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        events = await seed(client, acme)
        await set_retention(client, acme)
        resp = await prune(client, acme)
        assert resp.status_code == 200, resp.text
        run = resp.json()
        gone = [e["seq"] for e in expired(events)]
        assert run["pruned"] == len(gone)
        assert (run["first_seq"], run["last_seq"], run["done"]) == (min(gone), max(gone), True)
        assert run["retention_days"] == 30
        again = (await prune(client, acme)).json()
        assert again["pruned"] == 0

    async def test_the_run_is_an_audit_event(self, client: httpx.AsyncClient, acme: Keys) -> None:
        events = await seed(client, acme)
        await set_retention(client, acme)
        run = (await prune(client, acme)).json()
        listed = await client.get(
            "/v1/events", params={"action": "retention.prune"}, headers=acme.auth("reader")
        )
        [record] = listed.json()["events"]
        assert record["category"] == "system"
        assert len(events) == EVENTS
        assert record["seq"] == PRUNE_RECORD  # after the retention setting's own record
        assert record["metadata"] == {
            "count": run["pruned"],
            "first_seq": run["first_seq"],
            "last_seq": run["last_seq"],
            "cutoff": run["cutoff"],
            "policy": {"retention_days": 30},
        }

    async def test_limit_leaves_the_rest_for_the_next_call(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        events = await seed(client, acme)
        await set_retention(client, acme)
        first = (await prune(client, acme, limit=5)).json()
        assert (first["pruned"], first["done"]) == (5, False)
        rest = (await prune(client, acme)).json()
        assert first["pruned"] + rest["pruned"] == len(expired(events))

    @pytest.mark.parametrize("role", [pytest.param("reader"), pytest.param("writer")])
    async def test_needs_an_admin_key(
        self, client: httpx.AsyncClient, acme: Keys, role: str
    ) -> None:
        await set_retention(client, acme)
        resp = await client.post("/v1/tenant/prune", json={}, headers=acme.auth(role))
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "FORBIDDEN"

    async def test_no_policy_is_a_conflict(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme)
        resp = await prune(client, acme)
        assert resp.status_code == 409
        assert "retention_days" in resp.json()["error"]["message"]

    async def test_a_legal_hold_stops_it(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await seed(client, acme)
        await set_retention(client, acme)
        services.tenants.update_settings("acme", {"legal_hold": True})
        resp = await prune(client, acme)
        assert resp.status_code == 409
        assert "legal hold" in resp.json()["error"]["message"]
        assert services.events.count("acme", EventQuery()) == EVENTS + 1  # + the setting

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({"limit": 0}, id="zero-limit"),
            pytest.param({"limit": "many"}, id="text-limit"),
            pytest.param({"older_than": 3}, id="unknown-field"),
        ],
    )
    async def test_bad_body_is_422(
        self, client: httpx.AsyncClient, acme: Keys, body: dict[str, Any]
    ) -> None:
        await set_retention(client, acme)
        resp = await prune(client, acme, **body)
        assert resp.status_code == 422
        assert resp.json()["error"]["code"] == "VALIDATION_FAILED"


@pytest.mark.asyncio
class TestPrunedReads:
    """After a prune, what is left reads exactly as a brute-force reference says."""

    async def _pruned(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        events = await seed(client, acme)
        await set_retention(client, acme)
        assert (await prune(client, acme)).status_code == 200
        gone = expired(events)
        return events, gone

    async def test_by_id_reads_as_pruned(self, client: httpx.AsyncClient, acme: Keys) -> None:
        _, gone = await self._pruned(client, acme)
        for event in gone:
            resp = await client.get(f"/v1/events/{event['id']}", headers=acme.auth("reader"))
            assert resp.status_code == 200
            assert resp.json() == {
                "id": event["id"],
                "seq": event["seq"],
                "hash": event["hash"],
                "pruned": True,
            }

    async def test_lists_counts_and_facets_skip_the_pruned(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        events, gone = await self._pruned(client, acme)
        gone_ids = {e["id"] for e in gone}
        kept = [e for e in events if e["id"] not in gone_ids]
        listed = await client.get("/v1/events", params={"limit": 1000}, headers=acme.auth("reader"))
        ids = {e["id"] for e in listed.json()["events"]}
        assert ids == {e["id"] for e in kept} | _admin_records(listed.json()["events"])
        assert services.events.count("acme", EventQuery()) == len(ids)
        for query in (EventQuery(after_seq=10), EventQuery(max_seq=30, after_seq=3)):
            low = query.after_seq if query.after_seq is not None else -1
            high = query.max_seq if query.max_seq is not None else 10**9
            expected = [i for i in ids if low < _seq(listed.json()["events"], i) <= high]
            assert services.events.count("acme", query) == len(expected)
        searched = await client.get(
            "/v1/events", params={"q": "invoices", "limit": 1000}, headers=acme.auth("reader")
        )
        assert {e["id"] for e in searched.json()["events"]} == {e["id"] for e in kept}
        facets = await client.get("/v1/facets", headers=acme.auth("reader"))
        assert facets.json()["total"] == len(ids)
        actions = {f["value"]: f["count"] for f in facets.json()["facets"]["action"]}
        for action in ("doc.read", "doc.update"):
            assert actions.get(action, 0) == sum(1 for e in kept if e["action"] == action)

    async def test_every_proof_still_verifies_and_is_unchanged(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        events = await seed(client, acme)
        log = services.log
        early = log.sign_pending()
        assert early
        first = log.latest_checkpoint("acme")
        before_inclusion = {
            e["seq"]: log.inclusion_proof("acme", e["seq"], first.size) for e in events
        }
        before_consistency = {
            (a, first.size): log.consistency_proof("acme", a, first.size)
            for a in range(1, first.size + 1, 7)
        }
        await set_retention(client, acme)
        assert (await prune(client, acme)).status_code == 200
        log.sign_pending()
        latest = log.latest_checkpoint("acme")
        assert latest.size == first.size + 2  # the retention setting and the prune record
        for seq, proof in before_inclusion.items():
            assert log.inclusion_proof("acme", seq, first.size) == proof
            leaf = bytes.fromhex(events[seq]["hash"])
            verify_inclusion(RFC9162, seq, first.size, leaf, proof, first.root_hash)
        for (a, b), proof in before_consistency.items():
            assert log.consistency_proof("acme", a, b) == proof
            old = services.store.checkpoint_at("acme", a)
            if old is not None:
                verify_consistency(RFC9162, a, b, proof, old.root_hash, first.root_hash)
        proof = log.consistency_proof("acme", first.size, latest.size)
        verify_consistency(
            RFC9162, first.size, latest.size, proof, first.root_hash, latest.root_hash
        )
        key = (await client.get("/v1/log/key")).text
        for event in events:
            resp = await client.get(f"/v1/events/{event['id']}/proof", headers=acme.auth("reader"))
            assert resp.status_code == 200
            verify_event(resp.json(), key)

    async def test_redacting_a_pruned_event_is_a_conflict(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        _, gone = await self._pruned(client, acme)
        resp = await client.post(
            f"/v1/events/{gone[0]['id']}/redact",
            json={"fields": ["actor"]},
            headers=acme.auth("admin"),
        )
        assert resp.status_code == 409
        assert resp.json()["error"]["code"] == "CONFLICT"
        assert "pruned" in resp.json()["error"]["message"]

    async def test_the_dump_verifies_and_the_database_audits_clean(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        _, gone = await self._pruned(client, acme)
        services.log.sign_pending()
        lines = list(dump_lines(services.store, "acme"))
        records = [orjson.loads(line) for line in lines[1:]]
        assert [r["seq"] for r in records if r.get("pruned")] == [e["seq"] for e in gone]
        report = verify_dump(lines, services.log.signer.verifier())
        assert (report.events, report.pruned) == (PRUNE_RECORD + 1, len(gone))
        verifier = services.log.signer.verifier()
        audit = audit_tenant(services.store, "acme", verifier, "test.trailkeep/acme")
        assert audit.problems == []
        assert audit.events == PRUNE_RECORD + 1


@pytest.mark.asyncio
class TestDialects:
    """Each dialect skips a pruned event in its lists and totals, and answers a lookup of one
    by id as its vendor answers an id it does not have (never a 500)."""

    async def test_lookups_by_id(self, client: httpx.AsyncClient, acme: Keys) -> None:
        events = await seed(client, acme)
        await set_retention(client, acme)
        await prune(client, acme)
        pruned_id = expired(events)[0]["id"]
        unknown = "evt_01JZZZZZZZZZZZZZZZZZZZZZZZ"
        for path in ("/api/v1/auditing/items/{}", "/wasabi/api/data/audit/{}"):
            gone = await client.get(path.format(pruned_id), headers=acme.auth("reader"))
            never = await client.get(path.format(unknown), headers=acme.auth("reader"))
            assert gone.status_code == never.status_code == 404, (path, gone.text)
            assert gone.json().keys() == never.json().keys()

    async def test_lists_skip_the_pruned(self, client: httpx.AsyncClient, acme: Keys) -> None:
        events = await seed(client, acme)
        await set_retention(client, acme)
        await prune(client, acme)
        kept = {e["id"] for e in events if e["seq"] % 3 == 1}
        headers = acme.auth("reader")
        kubiya = await client.get(
            "/api/v1/auditing/items",
            params={"filter": '{"category_name": "c1", "timestamp": {}}'},
            headers=headers,
        )
        assert {i["id"] for i in kubiya.json()} == kept
        axon = await client.post(
            "/axonflow/api/v1/audit/search", json={"limit": 1000}, headers=headers
        )
        assert {e["id"] for e in axon.json()["entries"]} >= kept
        assert not {e["id"] for e in axon.json()["entries"]} & {e["id"] for e in expired(events)}
        agilicus = await client.get("/agilicus/v1/audits", headers=headers)
        assert len([a for a in agilicus.json()["audits"] if a["action"].startswith("doc.")]) == len(
            kept
        )
        wasabi = await client.get(
            "/wasabi/api/data/audit", params={"group_id": "g1"}, headers=headers
        )
        assert wasabi.json()["total"] == len(kept)


def _admin_records(listed: list[dict[str, Any]]) -> set[str]:
    """The ids of the retention setting's and the prune run's records, at their seqs."""
    records = {e["seq"]: e for e in listed if e["category"] == "system"}
    assert records.keys() == {SETTING, PRUNE_RECORD}
    assert records[SETTING]["action"] == "tenant.settings"
    assert records[PRUNE_RECORD]["action"] == "retention.prune"
    return {e["id"] for e in records.values()}


def _seq(listed: list[dict[str, Any]], event_id: str) -> int:
    seq: int = next(e["seq"] for e in listed if e["id"] == event_id)
    return seq

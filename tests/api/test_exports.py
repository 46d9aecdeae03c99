"""POST /v1/exports, GET /v1/exports/{id} and its download, in-process."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.client.verify import DUMP_FORMAT, verify_dump, verify_event
from trailkeep.service.admin_trail import Actor
from trailkeep.service.exports import CSV_COLUMNS, EXPORT_FORMAT
from trailkeep.service.selection import Selection
from trailkeep.settings import Settings

pytestmark = pytest.mark.asyncio

EVENTS: list[dict[str, Any]] = [
    {"action": "login", "actor": {"id": "u-1", "email": "a@x.io"}, "timestamp": "2026-01-01"},
    {"action": "login", "actor": {"id": "u-2"}, "timestamp": "2026-01-02"},
    {"action": "doc.edit", "actor": {"id": "u-1"}, "message": "=HYPERLINK(1)",
     "metadata": {"n": 1}, "timestamp": "2026-01-03"},
    {"action": "login", "actor": {"id": "u-1"}, "timestamp": "2026-01-04"},
]  # fmt: skip


async def seed(client: httpx.AsyncClient, keys: Keys, events: list[dict[str, Any]]) -> None:
    resp = await client.post(
        "/v1/events/batch", json={"events": events}, headers=keys.auth("writer")
    )
    assert resp.status_code == 201, resp.text


async def create(
    client: httpx.AsyncClient, keys: Keys, body: dict[str, Any], status: int = 201
) -> dict[str, Any]:
    resp = await client.post("/v1/exports", json=body, headers=keys.auth("reader"))
    assert resp.status_code == status, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def download(client: httpx.AsyncClient, keys: Keys, export: dict[str, Any]) -> bytes:
    resp = await client.get(export["download_url"], headers=keys.auth("reader"))
    assert resp.status_code == 200, resp.text
    return resp.content


def jsonl(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines()]


class TestCreate:
    """An export is ready at once, snapshots the log, and says what it selects."""

    async def test_everything(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {})
        assert export["id"].startswith("exp_")
        assert export["status"] == "ready"
        assert export["format"] == "jsonl"
        assert (export["size"], export["events"]) == (4, 4)  # it signed the pending checkpoint
        assert services.store.latest_checkpoint("acme").size == 4  # type: ignore[union-attr]
        assert export["download_url"] == f"/v1/exports/{export['id']}/download"
        status = await client.get(f"/v1/exports/{export['id']}", headers=acme.auth("reader"))
        assert status.json() == export

    async def test_filtered_count_is_computed_on_request(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {"action": "login", "actor_id": ["u-1"]})
        assert export["filters"] == {"action": ["login"], "actor.id": ["u-1"]}
        assert export["events"] is None
        url = f"/v1/exports/{export['id']}"
        counted = await client.get(url, params={"count": "true"}, headers=acme.auth("reader"))
        assert counted.json()["events"] == 2
        again = await client.get(url, headers=acme.auth("reader"))
        assert again.json()["events"] == 2  # remembered

    async def test_search_query(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {"q": "hyperlink OR actor.id:u-2", "format": "json"})
        assert export["q"] == "hyperlink OR actor.id:u-2"
        document = orjson.loads(await download(client, acme, export))
        assert [e["seq"] for e in document["events"]] == [1, 2]
        assert document["export"]["q"] == "hyperlink OR actor.id:u-2"

    async def test_bad_query_refused_at_creation(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        error = await create(client, acme, {"q": "(unclosed"}, 400)
        assert error["error"]["code"] == "INVALID_QUERY"

    async def test_times_are_fixed_at_creation(self, client: httpx.AsyncClient, acme: Keys) -> None:
        export = await create(client, acme, {"start": "2026-01-02", "end": "now"})
        assert export["start"] == "2026-01-02T00:00:00.000000Z"
        assert export["end"] is not None
        assert export["end"].endswith("Z")

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            pytest.param({"format": "xml"}, 422, "VALIDATION_FAILED", id="unknown-format"),
            pytest.param({"actor": "u"}, 422, "VALIDATION_FAILED", id="unknown-field"),
            pytest.param({"start": "soonish"}, 400, "INVALID_TIME", id="bad-time"),
            pytest.param({"action": ["x" * 600]}, 422, "VALIDATION_FAILED", id="long-value"),
        ],
    )
    async def test_refused(
        self, client: httpx.AsyncClient, acme: Keys, body: dict[str, Any], status: int, code: str
    ) -> None:
        error = await create(client, acme, body, status)
        assert error["error"]["code"] == code

    async def test_needs_a_reader(self, client: httpx.AsyncClient, acme: Keys) -> None:
        resp = await client.post("/v1/exports", json={}, headers=acme.auth("writer"))
        assert resp.status_code == 403


class TestJsonLines:
    """The JSON-lines file carries each event with its salts, so it verifies."""

    async def test_everything_is_a_verifiable_dump(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {})
        body = await download(client, acme, export)
        header, *records = jsonl(body)
        assert header["format"] == DUMP_FORMAT
        report = verify_dump(body.splitlines(), services.log.signer.verifier())
        assert (report.tenant_id, report.events) == ("acme", 4)
        assert [r["event"]["seq"] for r in records] == [0, 1, 2, 3]

    async def test_selection_records_verify_one_by_one(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {"actor.id": "u-1"})
        header, *records = jsonl(await download(client, acme, export))
        assert header["format"] == EXPORT_FORMAT
        assert header["filters"] == {"actor.id": ["u-1"]}
        assert [r["event"]["seq"] for r in records] == [0, 2, 3]
        key = services.log.signer.verifier()
        for record in records:
            event_id = record["event"]["id"]
            proof = await client.get(f"/v1/events/{event_id}/proof", headers=acme.auth("reader"))
            evidence = {**proof.json(), **record}
            assert evidence["checkpoint"] == header["checkpoint"]
            assert verify_event(evidence, key).size == 4

    async def test_snapshot_is_stable(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, EVENTS[:2])
        export = await create(client, acme, {"action": "login"})
        await seed(client, acme, EVENTS)  # after the snapshot
        _, *records = jsonl(await download(client, acme, export))
        assert [r["event"]["seq"] for r in records] == [0, 1]

    async def test_sparse_selection_over_many_events(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        noise = [{"action": "noise"}] * 999
        await seed(client, acme, [{"action": "rare"}, *noise])
        await seed(client, acme, [*noise, {"action": "rare"}])
        export = await create(client, acme, {"action": "rare"})
        _, *records = jsonl(await download(client, acme, export))
        assert [r["event"]["seq"] for r in records] == [0, 1999]
        assert all(r["salts"] for r in records)

    async def test_empty_log(self, client: httpx.AsyncClient, acme: Keys) -> None:
        export = await create(client, acme, {})
        assert export["size"] == 0
        (header,) = jsonl(await download(client, acme, export))
        assert header["tenant_id"] == "acme"


class TestOtherFormats:
    """JSON is one document; CSV is one row per event, safe to open in a spreadsheet."""

    async def test_json(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {"format": "json", "action": "login"})
        resp = await client.get(export["download_url"], headers=acme.auth("reader"))
        assert resp.headers["content-type"] == "application/json"
        assert 'filename="acme-export-' in resp.headers["content-disposition"]
        document = resp.json()
        listed = await client.get(
            "/v1/events", params={"action": "login", "sort": "asc"}, headers=acme.auth("reader")
        )
        assert document["events"] == listed.json()["events"]
        assert document["export"]["size"] == 4

    async def test_json_empty(self, client: httpx.AsyncClient, acme: Keys) -> None:
        export = await create(client, acme, {"format": "json"})
        assert orjson.loads(await download(client, acme, export))["events"] == []

    async def test_csv(self, client: httpx.AsyncClient, acme: Keys) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {"format": "csv"})
        rows = list(csv.DictReader(io.StringIO((await download(client, acme, export)).decode())))
        assert list(rows[0]) == list(CSV_COLUMNS)
        assert [r["seq"] for r in rows] == ["0", "1", "2", "3"]
        assert rows[0]["actor.email"] == "a@x.io"
        assert rows[2]["message"] == "'=HYPERLINK(1)"  # never run as a formula
        assert orjson.loads(rows[2]["metadata"]) == {"n": 1}


class TestIsolation:
    """An export id works only in its own tenant, on servers holding the same key."""

    async def test_other_tenant_gets_404(
        self, client: httpx.AsyncClient, acme: Keys, globex: Keys
    ) -> None:
        await seed(client, acme, EVENTS)
        export = await create(client, acme, {})
        for path in (f"/v1/exports/{export['id']}", export["download_url"]):
            resp = await client.get(path, headers=globex.auth("reader"))
            assert resp.status_code == 404
            assert resp.json()["error"]["code"] == "NOT_FOUND"

    @pytest.mark.parametrize(
        "mutate",
        [
            pytest.param(lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), id="bad-mac"),
            pytest.param(lambda t: "exp_" + t[5:], id="changed-payload"),
            pytest.param(lambda t: t.replace("exp_", "xxx_"), id="wrong-prefix"),
            pytest.param(lambda t: "exp_.", id="empty"),
            # hmac.compare_digest refuses non-ASCII str: a 500 unless compared as bytes
            pytest.param(lambda t: t[:-2] + "\u00e9\u00e9", id="non-ascii-mac"),
        ],
    )
    async def test_forged_ids_get_404(
        self, client: httpx.AsyncClient, acme: Keys, mutate: Any
    ) -> None:
        export = await create(client, acme, {})
        resp = await client.get(f"/v1/exports/{mutate(export['id'])}", headers=acme.auth("reader"))
        assert resp.status_code == 404

    async def test_another_signing_key_gets_404(
        self, client: httpx.AsyncClient, acme: Keys, settings: Settings, tmp_path: Path
    ) -> None:
        other = Services.build(settings.model_copy(update={"signing_key": tmp_path / "k2"}))
        try:
            job = other.exports.create("acme", Selection(), "csv", Actor("test", "cli"))
        finally:
            other.close()
        resp = await client.get(f"/v1/exports/{job.id}", headers=acme.auth("reader"))
        assert resp.status_code == 404

"""POST /v1/exports with format=bundle: a file that proves its selection complete, offline."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.api.test_exports import create, download, seed
from tests.conftest import Keys
from trailkeep.api.services import Services
from trailkeep.client.bundle import BUNDLE_FORMAT, BundleFormatError, verify_bundle
from trailkeep.client.verify import DumpFormatError, verify_dump

pytestmark = pytest.mark.asyncio

EVENTS: list[dict[str, Any]] = [
    {"action": "user.login", "actor": {"id": "u-1", "email": "a@x.io"},
     "timestamp": "2026-01-01"},
    {"action": "user.login", "actor": {"id": "u-2"}, "timestamp": "2026-01-02",
     "outcome": "failure"},
    {"action": "doc.edit", "actor": {"id": "u-1"}, "metadata": {"n": 1},
     "timestamp": "2026-01-03"},
    {"action": "user.login", "actor": {"id": "ü-1", "name": "Zoë 🚀"},
     "timestamp": "2026-01-04", "message": "façade"},
    {"action": "doc.view", "timestamp": "2026-01-05"},
]  # fmt: skip


async def bundle(
    client: httpx.AsyncClient, keys: Keys, body: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    export = await create(client, keys, {**body, "format": "bundle"})
    return export, await download(client, keys, export)


def lines(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines()]


class TestBundleExport:
    """The export route writes bundles that verify, on every backend."""

    @pytest.mark.parametrize(
        ("body", "matching"),
        [
            pytest.param({}, [0, 1, 2, 3, 4], id="everything"),
            pytest.param({"action": "user.login"}, [0, 1, 3], id="action"),
            pytest.param({"actor_id": ["u-1", "ü-1"]}, [0, 2, 3], id="actor-any-of"),
            pytest.param({"outcome": "failure"}, [1], id="outcome-default-is-unknown"),
            pytest.param({"start": "2026-01-02", "end": "2026-01-04"}, [1, 2], id="time-range"),
            pytest.param({"q": "action:user.login actor.id:ü-1"}, [3], id="query-and"),
            pytest.param({"q": "action:doc.edit OR action:doc.view"}, [2, 4], id="query-or"),
            pytest.param({"q": "timestamp>=2026-01-04"}, [3, 4], id="query-time"),
            pytest.param({"actor_email": "a@x.io"}, [0], id="absent-field"),
        ],
    )
    async def test_holds_exactly_the_matches_and_verifies(
        self,
        client: httpx.AsyncClient,
        acme: Keys,
        services: Services,
        body: dict[str, Any],
        matching: list[int],
    ) -> None:
        await seed(client, acme, EVENTS)
        export, data = await bundle(client, acme, body)
        assert export["format"] == "bundle"
        assert export["seq_range"] == [0, 5]
        records = lines(data)
        assert records[0]["format"] == BUNDLE_FORMAT
        assert [r["event"]["seq"] for r in records[1:] if "event" in r] == matching
        report = verify_bundle(data.splitlines(), services.log.signer.verifier())
        assert (report.events, report.excluded, report.complete) == (
            len(matching),
            5 - len(matching),
            True,
        )

    async def test_a_seq_range(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await seed(client, acme, EVENTS)
        export, data = await bundle(client, acme, {"action": "user.login", "seq_start": 1,
                                                    "seq_end": 4})  # fmt: skip
        assert export["seq_range"] == [1, 4]
        report = verify_bundle(data.splitlines(), services.log.signer.verifier())
        assert (report.start, report.end, report.events, report.excluded) == (1, 4, 2, 1)

    @pytest.mark.parametrize(
        ("body", "named"),
        [
            pytest.param({"q": "login"}, "login", id="free-text"),
            pytest.param({"q": "metadata.n:1"}, "metadata.n:1", id="json-field"),
            pytest.param({"q": "-action:x"}, "action:x", id="negation"),
            pytest.param({"q": "action:user.*"}, "action:user.*", id="prefix"),
            pytest.param({"q": "action:a OR outcome:b"}, "outcome:b", id="or-across-fields"),
            pytest.param({"seq_end": 99}, "seq_end", id="range-past-the-log"),
        ],
    )
    async def test_an_unsupported_filter_is_a_400_naming_it(
        self, client: httpx.AsyncClient, acme: Keys, body: dict[str, Any], named: str
    ) -> None:
        await seed(client, acme, EVENTS)
        error = await create(client, acme, {**body, "format": "bundle"}, status=400)
        assert named in error["error"]["message"]

    async def test_seq_range_is_for_bundles_only(
        self, client: httpx.AsyncClient, acme: Keys
    ) -> None:
        error = await create(client, acme, {"seq_start": 1}, status=400)
        assert "format=bundle" in error["error"]["message"]

    async def test_an_erased_field_the_filter_needs_is_reported(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await seed(client, acme, EVENTS)
        page = (await client.get("/v1/events?sort=asc", headers=acme.auth("reader"))).json()
        first, third = page["events"][0]["id"], page["events"][2]["id"]
        for event_id in (first, third):
            resp = await client.post(
                f"/v1/events/{event_id}/redact", json={"fields": ["actor.id"]},
                headers=acme.auth("admin"),
            )  # fmt: skip
            assert resp.status_code == 200, resp.text
        _, data = await bundle(client, acme, {"actor_id": "u-1", "action": "doc.edit"})
        report = verify_bundle(data.splitlines(), services.log.signer.verifier())
        # seq 0 fails on action (disclosed); seq 2 matches the action, its actor.id is erased
        assert report.unprovable == (2,)
        assert not report.complete
        assert "1 events cannot be shown not to match" in report.gaps()[0]


class TestNotABundle:
    """Each verifier tells a file of another kind apart from a tampered one."""

    async def test_a_filtered_export_is_not_a_dump(
        self, client: httpx.AsyncClient, acme: Keys, services: Services
    ) -> None:
        await seed(client, acme, EVENTS)
        data = await download(client, acme, await create(client, acme, {"action": "doc.edit"}))
        with pytest.raises(DumpFormatError, match="--format bundle"):
            verify_dump(data.splitlines(), services.log.signer.verifier())
        with pytest.raises(BundleFormatError, match="--format bundle"):
            verify_bundle(data.splitlines(), services.log.signer.verifier())

"""Issue 13's cases on a tenant of more than 60,000 events, through the vendors' real clients
(Wasabi by raw HTTP, its spec having no client) against a real server: every answer is exact,
old events are found, totals count everything, deep pages are full.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.compat import reference
from tests.compat.bigtenant import TENANT, BigTenant, big_tenant
from tests.compat.support import vendor

os.environ["AXONFLOW_TELEMETRY"] = "off"  # before the SDK is imported; nothing leaves loopback
kubiya = vendor("kubiya")
axonflow = vendor("axonflow")
vendor("agilicus")  # puts agilicus_api on the path
agilicus_api = vendor("agilicus_api")
from axonflow.types import AuditQueryOptions, AuditSearchRequest  # noqa: E402

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

EPOCH = "2000-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigTenant]:
    with big_tenant(tmp_path_factory.mktemp("big")) as served:
        yield served


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


# -- Kubiya -----------------------------------------------------------------------------------


def kubiya_client(big: BigTenant) -> Any:
    return kubiya.KubiyaClient(
        api_key=big.reader.token, base_url=big.url, max_retries=0, timeout=120
    )


class TestKubiyaAtScale:
    """Pages past 50,000 are full; derived fields, text and sessions find the oldest item."""

    def test_page_past_fifty_thousand(self, big: BigTenant) -> None:
        got = kubiya_client(big).audit.list(start_time=EPOCH, page=51, page_size=1000)
        expected = reference.kubiya_items(big.events, {}, page=51, page_size=1000)
        assert len(got) == 1000
        assert ids(got) == ids(expected)

    @pytest.mark.parametrize(
        ("call", "kwargs", "needle"),
        [
            pytest.param("list", {"category_name": "cat-old"}, 0, id="category_name"),
            pytest.param("search", {"text": "NEEDLE-oldest-TEXT"}, 0, id="search-text"),
            pytest.param("list", {"session_id": "session-old"}, 0, id="session-native"),
            pytest.param("list", {"session_id": "extra-session-old"}, 1, id="session-in-extra"),
        ],
    )
    def test_oldest_item_is_found(
        self, big: BigTenant, call: str, kwargs: dict[str, str], needle: int
    ) -> None:
        got = getattr(kubiya_client(big).audit, call)(start_time=EPOCH, **kwargs)
        assert ids(got) == [big.oldest[needle].id]
        if "session_id" in kwargs:
            assert got[0]["extra"]["session_id"] == kwargs["session_id"]


# -- AxonFlow ---------------------------------------------------------------------------------


def axon(big: BigTenant) -> Any:
    return axonflow.AxonFlow(
        endpoint=f"{big.url}/axonflow",
        client_id=big.reader.client_id,
        client_secret=big.reader.client_secret,
    )


async def search(big: BigTenant, **body: Any) -> Any:
    async with axon(big) as client:
        return await client.search_audit_logs(AuditSearchRequest(**body))


class TestAxonFlowAtScale:
    """Totals count every event, offsets past 50,000 answer, metadata filters find the oldest."""

    def test_search_total_and_deep_offset(self, big: BigTenant) -> None:
        got = asyncio.run(search(big, limit=1000, offset=50_000))
        expected = reference.axonflow_search(big.events, {"limit": 1000, "offset": 50_000})
        assert got.total == expected.total == len(big.events)
        assert [e.id for e in got.entries] == ids(expected.records)

    def test_tenant_view_total_and_deep_offset(self, big: BigTenant) -> None:
        async def run() -> Any:
            async with axon(big) as client:
                options = AuditQueryOptions(limit=100, offset=50_000)
                return await client.get_audit_logs_by_tenant(TENANT, options)

        got = asyncio.run(run())
        expected = reference.axonflow_search(big.events, {"limit": 100, "offset": 50_000})
        assert got.total == len(big.events)
        assert [e.id for e in got.entries] == ids(expected.records)

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            pytest.param({"decision_id": "dec-old"}, 0, id="decision_id"),
            pytest.param({"override_id": "ovr-old"}, 0, id="override_id"),
            pytest.param({"policy_name": "policy-matched-old"}, 1, id="policy-matched"),
            pytest.param({"policy_name": "policy-applied-old"}, 1, id="policy-applied"),
        ],
    )
    def test_oldest_entry_is_found(self, big: BigTenant, body: dict[str, str], needle: int) -> None:
        got = asyncio.run(search(big, **body))
        assert ([e.id for e in got.entries], got.total) == ([big.oldest[needle].id], 1)

    def test_user_id_is_an_integer(self, big: BigTenant) -> None:
        """The seed documents ``"user_id": 123``; the SDK drops the field, so read the wire."""
        raw = f"{big.reader.client_id}:{big.reader.client_secret}".encode()
        resp = httpx.post(
            f"{big.url}/axonflow/api/v1/audit/search",
            json={"policy_name": "policy-applied-old"},
            headers={"Authorization": f"Basic {base64.b64encode(raw).decode()}"},
            timeout=60,
        )
        (entry,) = resp.json()["entries"]
        assert entry["user_id"] == 123
        assert type(entry["user_id"]) is int


# -- Wasabi -----------------------------------------------------------------------------------


def wasabi_get(big: BigTenant, path: str = "", **params: Any) -> Any:
    resp = httpx.get(
        f"{big.url}/wasabi/api/data/audit{path}",
        params=params,
        headers={"Authorization": f"Bearer {big.reader.token}"},
        timeout=120,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


class TestWasabiAtScale:
    """Totals, deep pages, every ``order``, filters on both ends, and ``/filters`` are exact."""

    def test_total_and_page_fifty(self, big: BigTenant) -> None:
        got = wasabi_get(big, page=50, count=1000)
        expected = reference.wasabi_list(big.events, {}, page=50, count=1000)
        assert got["total"] == expected.total == len(big.events)
        assert ids(got["audit_events"]) == ids(expected.records)

    @pytest.mark.parametrize("order", ["user_id", "-group_id", "target_kind", "-action_key"])
    def test_order_last_page(self, big: BigTenant, order: str) -> None:
        last = (len(big.events) - 1) // 1000
        got = wasabi_get(big, order=order, page=last, count=1000)
        expected = reference.wasabi_list(big.events, {}, order=order, page=last, count=1000)
        assert got["total"] == len(big.events)
        assert got["audit_events"] == expected.records

    @pytest.mark.parametrize(
        ("group", "which"),
        [pytest.param("group-new", "newest", id="newest"), pytest.param("group-old", "oldest")],
    )
    def test_group_on_either_end(self, big: BigTenant, group: str, which: str) -> None:
        got = wasabi_get(big, group_id=group)
        assert (ids(got["audit_events"]), got["total"]) == ([getattr(big, which)[0].id], 1)

    def test_filters_list_a_kind_only_the_oldest_has(self, big: BigTenant) -> None:
        got = wasabi_get(big, "/filters")["target_kinds"]
        assert {"name": "kind-old", "action_keys": ["execute"]} in got
        assert got == reference.wasabi_filters(big.events)


# -- Agilicus ---------------------------------------------------------------------------------


def agilicus(big: BigTenant) -> Any:
    config = agilicus_api.Configuration(host=f"{big.url}/agilicus", access_token=big.reader.token)
    return agilicus_api.AuditsApi(agilicus_api.ApiClient(config))


class TestAgilicusAtScale:
    """Each parameter finds the oldest matching record, however many newer ones there are."""

    @pytest.mark.parametrize(
        "params",
        [
            pytest.param({"org_id": "org-old"}, id="org_id"),
            pytest.param({"token_id": "tok-old"}, id="token_id"),
            pytest.param({"api_name": "api-old"}, id="api_name"),
            pytest.param({"org_id": "org-old", "dt_from": "", "limit": 50}, id="cli-style"),
        ],
    )
    def test_audits(self, big: BigTenant, params: dict[str, Any]) -> None:
        got = agilicus(big).list_audits(**params)
        assert [a.user_id for a in got.audits] == ["user-old"]

    def test_org_falls_back_to_the_tenant(self, big: BigTenant) -> None:
        """Records with no org of their own show the tenant, and are found by it."""
        got = agilicus(big).list_auth_records(org_id=TENANT)
        expected = reference.agilicus_auth(big.events, {"org_id": TENANT})
        assert [a.to_dict().get("user_id") for a in got.auth_audits] == [
            r.get("user_id") for r in expected
        ]
        assert len(expected) == 2

    def test_auth_records_upstream_idp(self, big: BigTenant) -> None:
        got = agilicus(big).list_auth_records(upstream_idp="idp-old", dt_to="")
        assert [a.user_id for a in got.auth_audits] == ["user-old"]

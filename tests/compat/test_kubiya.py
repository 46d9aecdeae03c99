"""kubiya-sdk's ``client.audit`` against a real server: the scenarios of
``shared/compat/kubiya-axonflow-agilicus.md`` §1.8 and more."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.compat.support import Tenant, vendor
from tests.process import Server

kubiya = vendor("kubiya")
from kubiya.resources.exceptions import AuditError  # noqa: E402 - after the vendor check

pytestmark = pytest.mark.timeout(60)

T0 = "2024-05-01T00:00:00Z"


def client(tenant: Tenant, role: str = "reader") -> Any:
    return kubiya.KubiyaClient(
        api_key=tenant.keys[role].token, base_url=tenant.url, max_retries=0, timeout=30
    )


def items(result: Any) -> list[dict[str, Any]]:
    """The items of a list/search answer (the server answers a bare array)."""
    assert isinstance(result, list), result
    return result


def event(ts: str, **fields: Any) -> dict[str, Any]:
    return {"timestamp": ts, "action": "execute", **fields}


AGENT_RUNS = [
    event(
        "2024-05-01T00:00:00Z",
        category="agents",
        outcome="success",
        target={"type": "tool", "id": "kubectl"},
        session_id="s1",
        metadata={"category_name": "a1"},
        message="hello from the first run",
    ),
    event(
        "2024-05-01T06:00:00.5Z",
        category="agents",
        outcome="failure",
        target={"type": "tool", "id": "kubectl"},
        session_id="s1",
        metadata={"category_name": "a1", "error_message": "Hello timeout"},
    ),
    event(
        "2024-05-01T12:00:00Z",
        category="agents",
        action="invoke",
        outcome="failure",
        target={"type": "agent"},
        session_id="s2",
        metadata={"category_name": "a2"},
        message="nothing to see",
    ),
    event(
        "2024-05-01T18:00:00Z",
        category="workflows",
        outcome="success",
        target={"type": "workflow", "name": "nightly"},
        metadata={"category_name": "data-processing", "extra": {"is_user_message": True}},
    ),
    event("2024-05-02T00:00:00Z", category="agents", outcome="success"),
    event("2024-05-02T00:00:00.000001Z", category="agents", outcome="success"),
]


@pytest.fixture
def seeded(tenant: Tenant) -> list[dict[str, Any]]:
    return tenant.seed(*AGENT_RUNS)


class TestList:
    """``list`` reads the filter JSON, time bounds, sort and pages the way the SDK sends them."""

    def test_time_range_newest_first(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K1: gte and lte are both inclusive, on the arrival time an item shows as its
        ``timestamp``; the answer is newest first."""
        start, end = seeded[0]["received_at"], seeded[4]["received_at"]
        got = items(client(tenant).audit.list(start_time=start, end_time=end))
        assert [i["id"] for i in got] == [e["id"] for e in reversed(seeded[:5])]
        assert [i["timestamp"] for i in got] == [e["received_at"] for e in reversed(seeded[:5])]

    def test_item_shape(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """Every Go CLI field is present with its Go type; extras ride along."""
        got = items(client(tenant).audit.list(start_time=T0, category_name="a1"))
        first = got[-1]
        assert first == {
            "id": seeded[0]["id"],
            "org": tenant.name,
            "email": "",
            "version": 0,
            "category_type": "agents",
            "category_name": "a1",
            "resource_type": "tool",
            "resource_text": "kubectl",
            "action_type": "execute",
            "action_successful": True,
            "timestamp": seeded[0]["received_at"],
            "event_timestamp": "2024-05-01T00:00:00.000000Z",
            "extra": {"session_id": "s1"},
            "scope": "",
            "session_id": "s1",
            "message": "hello from the first run",
            "metadata": {"category_name": "a1"},
        }
        assert got[0]["action_successful"] is False

    def test_all_filters_are_anded(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K2: category_type, category_name, action_type and resource_type together."""
        got = items(
            client(tenant).audit.list(
                category_type="agents",
                category_name="a1",
                action_type="execute",
                resource_type="tool",
                start_time=T0,
            )
        )
        assert [i["id"] for i in got] == [seeded[1]["id"], seeded[0]["id"]]

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            pytest.param({"category_type": "workflows"}, [3], id="category_type"),
            pytest.param({"category_name": "a2"}, [2], id="category_name"),
            pytest.param({"action_type": "invoke"}, [2], id="action_type"),
            pytest.param({"resource_type": "workflow"}, [3], id="resource_type"),
            pytest.param({"session_id": "s1"}, [1, 0], id="session_id-K3"),
            pytest.param({"category_name": "nobody"}, [], id="no-match"),
        ],
    )
    def test_each_filter(
        self,
        tenant: Tenant,
        seeded: list[dict[str, Any]],
        filters: dict[str, str],
        expected: list[int],
    ) -> None:
        got = items(client(tenant).audit.list(start_time=T0, **filters))
        assert [i["id"] for i in got] == [seeded[n]["id"] for n in expected]

    def test_ascending_pages(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K4: sort_direction=asc with page 2 of size 2 is items 3-4 of the ascending order."""
        got = items(
            client(tenant).audit.list(start_time=T0, sort_direction="asc", page=2, page_size=2)
        )
        assert [i["id"] for i in got] == [seeded[2]["id"], seeded[3]["id"]]

    def test_pages_walk_every_item_once(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        c = client(tenant)
        walked = [
            i["id"]
            for p in (1, 2, 3, 4)
            for i in items(c.audit.list(start_time=T0, page=p, page_size=2))
        ]
        assert walked == [e["id"] for e in reversed(seeded)]

    def test_limit_truncates_client_side(
        self, tenant: Tenant, seeded: list[dict[str, Any]]
    ) -> None:
        """K5: limit is never sent; the client cuts the answer."""
        assert len(items(client(tenant).audit.list(start_time=T0, limit=1))) == 1

    @pytest.mark.parametrize(
        "start",
        [
            pytest.param("2024-05-01", id="date-only"),
            pytest.param("2024-05-01T10:00:00", id="naive"),
            pytest.param("2024-05-01 10:00:00", id="space"),
            pytest.param("2024-05-01T12:00:00+02:00", id="offset"),
            pytest.param("2024-05-01T10:00:00.123Z", id="fraction"),
        ],
    )
    def test_lenient_times(self, tenant: Tenant, seeded: list[dict[str, Any]], start: str) -> None:
        """K11: whatever Python's fromisoformat accepts is sent verbatim and read as UTC."""
        got = items(client(tenant).audit.list(start_time=start, end_time=start))
        assert got == []
        got = items(client(tenant).audit.list(start_time=start))
        assert [i["id"] for i in got] == [e["id"] for e in reversed(seeded)]

    def test_default_start_is_a_day_ago(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """The SDK's default window is the last day of arrivals: events that arrived today are
        listed, whenever they say they happened."""
        fresh = tenant.seed({"action": "now"})
        got = [i["id"] for i in items(client(tenant).audit.list())]
        assert got == [fresh[0]["id"], *(e["id"] for e in reversed(seeded))]

    def test_go_cli_spelling(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K12's query: Go's compact JSON, ``timestamp`` first, ``{}`` for no bounds."""
        params = {
            "filter": '{"timestamp":{},"category_type":"workflows"}',
            "sort": '{"timestamp":-1}',
            "page": "1",
            "page_size": "50",
        }
        resp = httpx.get(
            f"{tenant.url}/api/v1/auditing/items",
            params=params,
            headers={"Authorization": f"UserKey {tenant.keys['reader'].token}"},
        )
        assert resp.status_code == 200
        assert [i["id"] for i in resp.json()] == [seeded[3]["id"]]


class TestSearch:
    """``search`` filters text and status on the server exactly as the client does."""

    def test_text_and_status(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K6: case-insensitive text anywhere in the item, and action_successful false."""
        got = items(client(tenant).audit.search(text="HELLO", status="failed", start_time=T0))
        assert [i["id"] for i in got] == [seeded[1]["id"]]

    def test_status_success(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        got = items(client(tenant).audit.search(status="success", start_time=T0))
        assert [i["id"] for i in got] == [seeded[n]["id"] for n in (5, 4, 3, 0)]

    def test_server_filters_before_paging(
        self, tenant: Tenant, seeded: list[dict[str, Any]]
    ) -> None:
        """A page of one still finds the match, so the server did the filtering."""
        resp = httpx.get(
            f"{tenant.url}/api/v1/auditing/items",
            params={
                "filter": json.dumps({"timestamp": {"gte": T0}}),
                "search_text": "nightly",
                "page_size": "1",
            },
            headers=tenant.auth("reader"),
        )
        assert [i["id"] for i in resp.json()] == [seeded[3]["id"]]

    def test_text_matches_keys_like_the_client(
        self, tenant: Tenant, seeded: list[dict[str, Any]]
    ) -> None:
        """Text inside an item key is in every item's JSON, where the SDK looks too."""
        got = items(client(tenant).audit.search(text="RESOURCE_T", start_time=T0))
        assert [i["id"] for i in got] == [e["id"] for e in reversed(seeded)]

    def test_bad_status_never_leaves_the_client(self, tenant: Tenant) -> None:
        with pytest.raises(ValueError, match="Status must be"):
            client(tenant).audit.search(status="maybe")


class TestDescribe:
    """``describe`` gets one item by id."""

    def test_existing(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K7."""
        got = client(tenant).audit.describe(seeded[2]["id"])
        assert got["id"] == seeded[2]["id"]
        assert got["category_name"] == "a2"

    def test_missing(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K8: a 404, then the client's fallback scan, then AuditError."""
        with pytest.raises(AuditError, match="not found"):
            client(tenant).audit.describe("missing")

    def test_another_tenants_id_is_missing(
        self, tenant: Tenant, other_tenant: Tenant, seeded: list[dict[str, Any]]
    ) -> None:
        with pytest.raises(AuditError, match="not found"):
            client(other_tenant).audit.describe(seeded[0]["id"])

    def test_unknown_id_is_404_in_kubiya_shape(self, tenant: Tenant) -> None:
        """The 404 that sends the client to its fallback scan (page_size 1000, gte now-7d)."""
        (fresh,) = tenant.seed({"action": "login"})
        resp = httpx.get(f"{tenant.url}/api/v1/auditing/items/nope", headers=tenant.auth("reader"))
        assert resp.status_code == 404
        assert resp.json()["code"] == "NOT_FOUND"
        with pytest.raises(AuditError):
            client(tenant).audit.describe("nope")
        assert client(tenant).audit.describe(fresh["id"])["id"] == fresh["id"]


class TestErrors:
    """Failures reach the SDK as AuditError, in Kubiya's shape, never the native one."""

    def test_wrong_key(self, tenant: Tenant) -> None:
        """K9."""
        bad = kubiya.KubiyaClient(api_key="nope.nope", base_url=tenant.url, max_retries=0)
        with pytest.raises(AuditError, match="Invalid API token"):
            bad.audit.list(start_time=T0)

    def test_writer_key_may_not_read(self, tenant: Tenant) -> None:
        with pytest.raises(AuditError, match="403"):
            client(tenant, "writer").audit.list(start_time=T0)

    @pytest.mark.parametrize(
        "params",
        [
            pytest.param({"filter": "{not json"}, id="filter-not-json"),
            pytest.param({"filter": "[1]"}, id="filter-not-object"),
            pytest.param({"filter": '{"colour": "red"}'}, id="filter-unknown-key"),
            pytest.param({"filter": '{"action_type": 3}'}, id="filter-not-string"),
            pytest.param({"filter": '{"timestamp": {"gte": "yesterday-ish"}}'}, id="bad-time"),
            pytest.param({"filter": '{"timestamp": {"after": "now"}}'}, id="bad-time-key"),
            pytest.param({"sort": '{"timestamp": 0}'}, id="bad-sort"),
            pytest.param({"page": "0"}, id="page-zero"),
            pytest.param({"page_size": "1001"}, id="page-size-too-big"),
            pytest.param({"status_filter": "maybe"}, id="bad-status"),
        ],
    )
    def test_bad_input_is_400_in_kubiya_shape(self, tenant: Tenant, params: dict[str, str]) -> None:
        resp = httpx.get(
            f"{tenant.url}/api/v1/auditing/items", params=params, headers=tenant.auth("reader")
        )
        assert resp.status_code == 400, resp.text
        body = resp.json()
        assert set(body) == {"error", "code"}
        assert isinstance(body["error"], str)

    def test_client_sees_400_as_audit_error(self, tenant: Tenant) -> None:
        with pytest.raises(AuditError, match="400"):
            client(tenant).audit.list(start_time=T0, category_type="x", page=0)

    def test_native_errors_keep_their_shape(self, tenant: Tenant) -> None:
        resp = httpx.get(f"{tenant.url}/v1/events", headers={"Authorization": "Bearer x.y"})
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"


class TestStream:
    """``stream`` polls with the newest timestamp it saw, verbatim, and dedupes."""

    @pytest.mark.timeout(30)
    def test_existing_then_new(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        """K10: the existing items once each, then an event written after the first poll."""
        stream = client(tenant).audit.stream(category_type="agents", start_time=T0, verbose=False)
        seen: list[dict[str, Any]] = []
        try:
            for _ in range(5):  # the five agents items of the seed, in one poll
                seen.append(next(stream))
            (new,) = tenant.seed({"action": "invoke", "category": "agents"})
            seen.append(next(stream))
        finally:
            stream.close()
        ids = [i["id"] for i in seen]
        agents = [e["id"] for e in seeded if e["category"] == "agents"]
        assert sorted(ids[:5]) == sorted(agents)
        assert ids[5] == new["id"]
        assert len(set(ids)) == len(ids)

    @pytest.mark.timeout(40)
    def test_late_and_future_events_are_delivered(self, tenant: Tenant) -> None:
        """An event dated an hour ahead does not blind the stream, and one dated an hour back
        (arriving late) is still delivered: the watermark is the arrival time."""
        now = datetime.now(UTC)
        start = (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stream = client(tenant).audit.stream(start_time=start, verbose=False)
        written, seen = [], []
        try:
            for when in (None, now + timedelta(hours=1), now - timedelta(hours=1), None):
                fields = {} if when is None else {"timestamp": when.isoformat()}
                written += tenant.seed({"action": f"step-{len(written)}", **fields})
                seen.append(next(stream))
        finally:
            stream.close()
        assert [i["id"] for i in seen] == [e["id"] for e in written]
        assert [i["event_timestamp"] for i in seen] == [e["timestamp"] for e in written]

    def test_fixed_width_timestamps_echo(
        self, tenant: Tenant, seeded: list[dict[str, Any]]
    ) -> None:
        """The newest timestamp sent back as ``gte`` returns that item (inclusive) and newer."""
        newest = items(client(tenant).audit.list(start_time=T0))[0]["timestamp"]
        assert len(newest) == len("2024-05-02T00:00:00.000001Z")
        again = items(client(tenant).audit.list(start_time=newest))
        assert [i["timestamp"] for i in again] == [newest]


def test_base_url_prefix_is_dropped(server: Server) -> None:
    """The root paths belong to Kubiya: no prefix is needed, and any prefix is dropped."""
    tok = server.tokens["reader"]
    c = kubiya.KubiyaClient(api_key=tok, base_url=f"{server.url}/some/prefix/", max_retries=0)
    assert c.audit.list(start_time=T0) == []

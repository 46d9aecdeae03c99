"""Wasabi AiR's audit API against a real server, with httpx: there is no client library, so
the shapes of ``shared/seeds/003_ab9bd4e266dc1506.txt`` are the contract."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.compat.support import Tenant

pytestmark = pytest.mark.timeout(60)

RECORD_KEYS = ["id", "user_id", "action_key", "target_kind", "target_id", "time"]

EVENTS: list[dict[str, Any]] = [
    {
        "timestamp": "2017-10-11T16:49:52.758191Z",
        "action": "login",
        "actor": {"id": "u-b"},
        "target": {"type": "authenticate", "id": "u-b"},
        "metadata": {"group_id": "g1"},
    },
    {
        "timestamp": "2017-10-13T20:54:43.14061Z",
        "action": "enable",
        "actor": {"id": "u-a"},
        "target": {"type": "feature", "id": "disabled_live_harvesting"},
    },
    {
        "timestamp": "2017-10-14T00:00:00Z",
        "action": "update-password",
        "actor": {"id": "u-b"},
        "target": {"type": "authenticate", "id": "u-b"},
        "metadata": {"group_id": "g2"},
    },
    {
        "timestamp": "2017-10-15T00:00:00Z",
        "action": "create",
        "actor": {"id": "u-c"},
        "target": {"type": "group", "id": "grp-1"},
        "metadata": {"group_id": "g1", "additional_id": "loc-7"},
    },
    {"timestamp": "2017-10-16T00:00:00Z", "action": "login"},
]


def get(tenant: Tenant, path: str = "", role: str = "reader", **params: Any) -> httpx.Response:
    return httpx.get(
        f"{tenant.url}/wasabi/api/data/audit{path}", params=params, headers=tenant.auth(role)
    )


@pytest.fixture
def seeded(tenant: Tenant) -> list[dict[str, Any]]:
    return tenant.seed(*EVENTS)


def ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [e["id"] for e in resp.json()["audit_events"]]


class TestList:
    """``GET /api/data/audit`` pages, filters and orders records and counts the matches."""

    def test_shape(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        resp = get(tenant)
        body = resp.json()
        assert list(body) == ["audit_events", "total", "page"]
        assert (body["total"], body["page"]) == (5, 0)
        first = body["audit_events"][0]
        assert first == {
            "id": seeded[0]["id"],
            "user_id": "u-b",
            "action_key": "login",
            "target_kind": "authenticate",
            "target_id": "u-b",
            "time": "2017-10-11T16:49:52.758191Z",
        }
        assert list(body["audit_events"][3]) == [*RECORD_KEYS, "additional_id"]
        assert body["audit_events"][4] == {
            "id": seeded[4]["id"],
            "user_id": "",
            "action_key": "login",
            "target_kind": "",
            "target_id": "",
            "time": "2017-10-16T00:00:00.000000Z",
        }

    def test_default_order_is_ctime_oldest_first(
        self, tenant: Tenant, seeded: list[dict[str, Any]]
    ) -> None:
        assert ids(get(tenant)) == [e["id"] for e in seeded]
        assert ids(get(tenant, order="-ctime")) == [e["id"] for e in reversed(seeded)]

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            pytest.param({"user_id": "u-b"}, [0, 2], id="user_id"),
            pytest.param({"group_id": "g1"}, [0, 3], id="group_id"),
            pytest.param({"target_kind": "authenticate"}, [0, 2], id="target_kind"),
            pytest.param({"target_id": "grp-1"}, [3], id="target_id"),
            pytest.param({"action_key": "login"}, [0, 4], id="action_key"),
            pytest.param({"user_id": "u-b", "group_id": "g2"}, [2], id="anded"),
            pytest.param(
                {"from": "2017-10-13T20:54:43.14061Z"}, [2, 3, 4], id="from-is-newer-than"
            ),
            pytest.param({"to": "2017-10-14T00:00:00Z"}, [0, 1], id="to-is-older-than"),
            pytest.param({"from": "2017-10-12", "to": "2017-10-15"}, [1, 2], id="window"),
            pytest.param({"from": "", "to": ""}, [0, 1, 2, 3, 4], id="empty-bounds"),
            pytest.param({"user_id": "nobody"}, [], id="no-match"),
        ],
    )
    def test_filters(
        self,
        tenant: Tenant,
        seeded: list[dict[str, Any]],
        params: dict[str, str],
        expected: list[int],
    ) -> None:
        resp = get(tenant, **params)
        assert ids(resp) == [seeded[n]["id"] for n in expected]
        assert resp.json()["total"] == len(expected)

    def test_pages_are_zero_based(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        pages = [get(tenant, page=p, count=2).json() for p in (0, 1, 2, 3)]
        assert [p["page"] for p in pages] == [0, 1, 2, 3]
        assert all(p["total"] == 5 for p in pages)
        walked = [e["id"] for p in pages for e in p["audit_events"]]
        assert walked == [e["id"] for e in seeded]
        assert pages[3]["audit_events"] == []

    def test_default_count_is_20(self, tenant: Tenant) -> None:
        tenant.seed(
            *({"action": "a", "timestamp": f"2020-01-01T00:00:{s:02d}Z"} for s in range(25))
        )
        body = get(tenant).json()
        assert (len(body["audit_events"]), body["total"]) == (20, 25)
        assert len(get(tenant, page=1).json()["audit_events"]) == 5

    @pytest.mark.parametrize(
        ("order", "expected"),
        [
            pytest.param("user_id", [4, 1, 0, 2, 3], id="user_id"),
            pytest.param("group_id", [1, 4, 0, 3, 2], id="group_id"),
            pytest.param("target_kind", [4, 0, 2, 1, 3], id="target_kind"),
            pytest.param("action_key", [3, 1, 0, 4, 2], id="action_key"),
            pytest.param("-user_id", [3, 2, 0, 1, 4], id="user_id-descending"),
            pytest.param("ctime", [0, 1, 2, 3, 4], id="ctime"),
        ],
    )
    def test_order(
        self, tenant: Tenant, seeded: list[dict[str, Any]], order: str, expected: list[int]
    ) -> None:
        """Ties keep time order (the opposite for a descending order)."""
        assert ids(get(tenant, order=order)) == [seeded[n]["id"] for n in expected]

    def test_order_then_page(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        body = get(tenant, order="action_key", page=1, count=2).json()
        assert [e["action_key"] for e in body["audit_events"]] == ["login", "login"]
        assert body["total"] == 5


class TestGetAndFilters:
    """One record by id, and the target kinds with their action keys."""

    def test_get_one(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        resp = get(tenant, f"/{seeded[1]['id']}")
        assert resp.status_code == 200
        assert resp.json() == {
            "id": seeded[1]["id"],
            "user_id": "u-a",
            "action_key": "enable",
            "target_kind": "feature",
            "target_id": "disabled_live_harvesting",
            "time": "2017-10-13T20:54:43.140610Z",
        }
        assert get(tenant, f"/{seeded[3]['id']}").json()["additional_id"] == "loc-7"

    def test_missing_and_other_tenant(
        self, tenant: Tenant, other_tenant: Tenant, seeded: list[dict[str, Any]]
    ) -> None:
        for who, path in ((tenant, "/nope"), (other_tenant, f"/{seeded[0]['id']}")):
            resp = get(who, path)
            assert resp.status_code == 404
            assert resp.json()["code"] == "NOT_FOUND"

    def test_filters(self, tenant: Tenant, seeded: list[dict[str, Any]]) -> None:
        resp = get(tenant, "/filters")
        assert resp.status_code == 200
        assert resp.json() == {
            "target_kinds": [
                {"name": "authenticate", "action_keys": ["login", "update-password"]},
                {"name": "feature", "action_keys": ["enable"]},
                {"name": "group", "action_keys": ["create"]},
            ]
        }

    def test_filters_of_an_empty_tenant(self, tenant: Tenant) -> None:
        assert get(tenant, "/filters").json() == {"target_kinds": []}


class TestErrors:
    """Bad input is a 400 naming it; credentials are checked like everywhere else."""

    @pytest.mark.parametrize(
        "params",
        [
            pytest.param({"order": "size"}, id="unknown-order"),
            pytest.param({"page": "-1"}, id="negative-page"),
            pytest.param({"count": "0"}, id="zero-count"),
            pytest.param({"count": "1001"}, id="count-too-big"),
            pytest.param({"from": "last tuesday"}, id="bad-from"),
            pytest.param({"to": "2017-02-30"}, id="bad-to"),
        ],
    )
    def test_bad_parameters(self, tenant: Tenant, params: dict[str, str]) -> None:
        resp = get(tenant, **params)
        assert resp.status_code == 400
        body = resp.json()
        assert set(body) == {"error", "code"}
        assert next(iter(params)) in body["error"]

    def test_credentials(self, tenant: Tenant) -> None:
        anonymous = httpx.get(f"{tenant.url}/wasabi/api/data/audit")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "UNAUTHENTICATED"
        assert get(tenant, role="writer").status_code == 403

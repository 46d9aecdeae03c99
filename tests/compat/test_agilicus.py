"""agilicus' generated ``AuditsApi`` (strict response checks) against a real server: the
scenarios of ``shared/compat/kubiya-axonflow-agilicus.md`` §3.8 and more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.compat.support import Tenant, vendor

vendor("agilicus")  # puts agilicus_api on the path
agilicus_api = vendor("agilicus_api")
from agilicus_api.exceptions import (  # noqa: E402
    ApiException,
    ApiValueError,
    ForbiddenException,
    UnauthorizedException,
)

pytestmark = pytest.mark.timeout(60)


def api(tenant: Tenant, who: str | None = "reader") -> Any:
    """The plain generated client with its strict defaults (never ``agilicus.GetClient``).

    ``who`` is a role of the tenant's keys, or a literal token (None sends no header).
    """
    access = tenant.keys[who].token if who in tenant.keys else who
    config = agilicus_api.Configuration(host=f"{tenant.url}/agilicus", access_token=access)
    return agilicus_api.AuditsApi(agilicus_api.ApiClient(config))


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


APP_AUDITS: list[dict[str, Any]] = [
    {
        "timestamp": "2024-05-01T00:00:00Z",
        "action": "POST",
        "actor": {"id": "u1"},
        "target": {"type": "application", "id": "app-1", "name": "Billing", "org_id": "o2"},
        "source": {"service": "applications", "ip": "10.0.0.1"},
        "trace_id": "tr-1",
        "session_id": "s1",
        "message": "created an application",
        "metadata": {
            "org_id": "o1",
            "token_id": "tok1",
            "secondary_id": "sec",
            "parent_id": "par",
            "connector_id": "c1",
            "audit_attributes": [
                {"attribute_type": "user", "attribute_id": "a", "attribute_org_id": "o1"},
                {"attribute_type": "group", "attribute_id": "z", "attribute_name": None},
            ],
        },
    },
    {
        "timestamp": "2024-05-01T12:00:00Z",
        "action": "PUT",
        "actor": {"id": "u1"},
        "target": {"type": "application", "id": "app-1"},
        "source": {"service": "applications"},
        "metadata": {
            "org_id": "o1",
            "audit_attributes": [{"attribute_type": "group", "attribute_id": "b"}],
        },
    },
    {
        "timestamp": "2024-05-02T00:00:00Z",
        "action": "POST",
        "actor": {"id": "u2"},
        "target": {"type": "user", "id": "u9"},
        "source": {"service": "users"},
        "metadata": {
            "org_id": "o2",
            "audit_attributes": [{"attribute_type": "user", "attribute_id": "c"}],
        },
    },
    {"timestamp": "2024-04-30T23:59:59.999999Z", "action": "DELETE"},
]


AUTH_RECORDS: list[dict[str, Any]] = [
    {
        "timestamp": "2024-05-01T10:00:00Z",
        "action": "Token",
        "outcome": "success",
        "actor": {"id": "u1"},
        "source": {"ip": "192.0.2.3", "client_id": "my-client", "user_agent": "curl/8"},
        "session_id": "s1",
        "trace_id": "t1",
        "request_id": "r1",
        "metadata": {
            "org_id": "o1",
            "org_name": "Org One",
            "upstream_user_id": "g-1",
            "upstream_idp": "google",
            "login_org_id": "lo",
            "login_org_name": "Login Org",
            "issuer": "https://auth.example",
            "application_name": "portal",
            "token_id": "tk",
            "event": "Success",
            "stage": "Login",
        },
    },
    {
        "timestamp": "2024-05-01T11:00:00Z",
        "action": "Token",
        "outcome": "failure",
        "session_id": "s1",
        "metadata": {"result": "Denied"},
    },
    {
        "timestamp": "2024-05-01T12:00:00Z",
        "action": "Authentication Request",
        "outcome": "success",
    },
    {"timestamp": "2024-05-01T13:00:00Z", "action": "Token", "session_id": "s2"},
]


class TestListAudits:
    """``list_audits`` passes strict validation, filters and bounds as documented."""

    def test_bare_call(self, tenant: Tenant) -> None:
        """G1: no query; ``limit`` 500; every time tz-aware; strict mode is satisfied."""
        tenant.seed(*APP_AUDITS)
        r = api(tenant).list_audits()
        assert r.limit == 500
        assert len(r.audits) == 4
        assert all(a.time.tzinfo is not None for a in r.audits)

    def test_limit(self, tenant: Tenant) -> None:
        """G2: newest first, at most ``limit``, echoed."""
        stored = tenant.seed(*APP_AUDITS)
        r = api(tenant).list_audits(limit=2)
        assert (r.limit, len(r.audits)) == (2, 2)
        assert [a.time for a in r.audits] == sorted((a.time for a in r.audits), reverse=True)
        assert r.audits[0].target_id == stored[2]["target"]["id"]

    def test_window_is_inclusive_exclusive(self, tenant: Tenant) -> None:
        """G3: a record at exactly dt_from is in; one at exactly dt_to is out."""
        tenant.seed(*APP_AUDITS)
        r = api(tenant).list_audits(dt_from="2024-05-01T00:00:00Z", dt_to="2024-05-02T00:00:00Z")
        assert [a.action for a in r.audits] == ["PUT", "POST"]
        assert r.audits[1].time == datetime(2024, 5, 1, tzinfo=UTC)

    def test_human_friendly_from(self, tenant: Tenant) -> None:
        """G4: the CLI's default ``now-1day`` with an org."""
        tenant.seed(
            *APP_AUDITS,
            {"timestamp": ago(hours=2), "action": "GET", "metadata": {"org_id": "o1"}},
            {"timestamp": ago(hours=30), "action": "GET", "metadata": {"org_id": "o1"}},
            {"timestamp": ago(hours=1), "action": "GET", "metadata": {"org_id": "o2"}},
        )
        r = api(tenant).list_audits(dt_from="now-1day", org_id="o1")
        assert len(r.audits) == 1
        assert r.audits[0].org_id == "o1"

    @pytest.mark.parametrize(
        ("dt_from", "dt_to", "count"),
        [
            pytest.param("today", "", 1, id="today"),
            pytest.param("", "now", 5, id="empty-from"),
            pytest.param("", "", 5, id="both-empty"),
            pytest.param("now-15min", "now+1h", 1, id="relative-window"),
            pytest.param("2024-05-01", "2024-05-02", 2, id="dates"),
            pytest.param("7d", "", 1, id="duration-ago"),
        ],
    )
    def test_time_forms(self, tenant: Tenant, dt_from: str, dt_to: str, count: int) -> None:
        tenant.seed(*APP_AUDITS, {"action": "GET"})  # timestamp: now
        r = api(tenant).list_audits(dt_from=dt_from, dt_to=dt_to)
        assert len(r.audits) == count

    def test_filters_are_anded(self, tenant: Tenant) -> None:
        """G5."""
        tenant.seed(*APP_AUDITS)
        r = api(tenant).list_audits(
            user_id="u1", action="POST", target_resource_type="application", api_name="applications"
        )
        assert len(r.audits) == 1
        a = r.audits[0]
        assert (a.user_id, a.action, a.target_resource_type, a.api_name) == (
            "u1",
            "POST",
            "application",
            "applications",
        )

    @pytest.mark.parametrize(
        ("params", "actions"),
        [
            pytest.param({"target_id": "app-1"}, ["PUT", "POST"], id="target_id"),
            pytest.param({"token_id": "tok1"}, ["POST"], id="token_id"),
            pytest.param({"org_id": "o2"}, ["POST"], id="org_id"),
            pytest.param({"attribute_type": "user"}, ["POST", "POST"], id="attribute_type"),
            pytest.param({"attribute_id": "b"}, ["PUT"], id="attribute_id"),
            pytest.param({"attribute_org_id": "o1"}, ["POST"], id="attribute_org_id"),
            pytest.param(
                {"attribute_type": "user", "attribute_id": "z"}, [], id="one-attribute-meets-all"
            ),
            pytest.param({"resources_behind_connector_id": "c1"}, ["POST"], id="connector"),
            pytest.param(
                {"action": ""}, ["POST", "PUT", "POST", "DELETE"], id="empty-is-no-filter"
            ),
        ],
    )
    def test_each_filter(self, tenant: Tenant, params: dict[str, str], actions: list[str]) -> None:
        tenant.seed(*APP_AUDITS)
        assert [a.action for a in api(tenant).list_audits(**params).audits] == actions

    def test_list_parameters(self, tenant: Tenant) -> None:
        """G6: repeated keys; one attribute with a type in the list and an id in the other."""
        stored = tenant.seed(*APP_AUDITS)
        r = api(tenant).list_audits(
            attribute_type_list=["user", "group"], attribute_id_list=["a", "b"]
        )
        assert [a.time for a in r.audits] == [
            datetime(2024, 5, 1, 12, tzinfo=UTC),
            datetime(2024, 5, 1, tzinfo=UTC),
        ]
        assert stored

    def test_every_field(self, tenant: Tenant) -> None:
        tenant.seed(APP_AUDITS[0])
        (a,) = api(tenant).list_audits().audits
        assert a.to_dict() == {
            "user_id": "u1",
            "target_resource_type": "application",
            "target_resource_org_id": "o2",
            "target_resource_name": "Billing",
            "api_name": "applications",
            "org_id": "o1",
            "time": datetime(2024, 5, 1, tzinfo=UTC),
            "action": "POST",
            "source_ip": "10.0.0.1",
            "target_id": "app-1",
            "token_id": "tok1",
            "trace_id": "tr-1",
            "session": "s1",
            "secondary_id": "sec",
            "parent_id": "par",
            "audit_attributes": [
                {"attribute_type": "user", "attribute_id": "a", "attribute_org_id": "o1"},
                {"attribute_type": "group", "attribute_id": "z", "attribute_name": None},
            ],
            "description": "created an application",
        }

    def test_sparse_record_parses_strictly(self, tenant: Tenant) -> None:
        """G7: absent fields are omitted, never null; bad metadata types are left out."""
        tenant.seed(
            {
                "action": "GET",
                "metadata": {"token_id": 5, "audit_attributes": [{"attribute_id": 1}, "x"]},
            }
        )
        (a,) = api(tenant).list_audits().audits
        assert a.to_dict()["audit_attributes"] == [{}]
        raw = httpx.get(f"{tenant.url}/agilicus/v1/audits", headers=tenant.auth("reader")).json()
        assert None not in raw["audits"][0].values()
        assert set(raw["audits"][0]) == {"org_id", "time", "action", "audit_attributes"}
        assert raw["audits"][0]["org_id"] == tenant.name

    def test_no_matches(self, tenant: Tenant) -> None:
        """G11: the list key is present and empty."""
        r = api(tenant).list_audits(user_id="nobody")
        assert (r.limit, r.audits) == (500, [])


class TestListAuthRecords:
    """``list_auth_records`` in the ``AuthAudits`` shape."""

    def test_result_and_event_name(self, tenant: Tenant) -> None:
        """G8."""
        tenant.seed(*AUTH_RECORDS)
        r = api(tenant).list_auth_records(result="Success", event_name="Token", limit=10)
        assert r.limit == 10
        assert [a.result for a in r.auth_audits] == ["Success"]

    def test_session_with_empty_dt_to(self, tenant: Tenant) -> None:
        """G9: the ``session_id`` parameter filters the ``session`` field; empty dt_to is open."""
        tenant.seed(*AUTH_RECORDS)
        r = api(tenant).list_auth_records(session_id="s1", dt_to="")
        assert [a.session for a in r.auth_audits] == ["s1", "s1"]
        assert [a.result for a in r.auth_audits] == ["Denied", "Success"]

    def test_cli_query(self, tenant: Tenant) -> None:
        """The agilicus CLI's own request: ``dt_to=&org_id=…&dt_from=now-1day&limit=100``."""
        tenant.seed(*AUTH_RECORDS, {"action": "Token", "metadata": {"org_id": "o1"}})
        resp = httpx.get(
            f"{tenant.url}/agilicus/v1/auth_audits?dt_to=&org_id=o1&dt_from=now-1day&limit=100",
            headers=tenant.auth("reader"),
        )
        assert resp.status_code == 200
        assert [r["org_id"] for r in resp.json()["auth_audits"]] == ["o1"]

    def test_every_field(self, tenant: Tenant) -> None:
        tenant.seed(AUTH_RECORDS[0])
        (a,) = api(tenant).list_auth_records().auth_audits
        assert a.to_dict() == {
            "user_id": "u1",
            "org_id": "o1",
            "time": datetime(2024, 5, 1, 10, tzinfo=UTC),
            "event_name": "Token",
            "source_ip": "192.0.2.3",
            "token_id": "tk",
            "trace_id": "t1",
            "session": "s1",
            "client_id": "my-client",
            "upstream_user_id": "g-1",
            "org_name": "Org One",
            "event": "Success",
            "issuer": "https://auth.example",
            "application_name": "portal",
            "login_org_id": "lo",
            "login_org_name": "Login Org",
            "upstream_idp": "google",
            "stage": "Login",
            "result": "Success",
            "user_agent": "curl/8",
            "request_id": "r1",
        }

    @pytest.mark.parametrize(
        ("params", "count"),
        [
            pytest.param({"user_id": "u1"}, 1, id="user_id"),
            pytest.param({"org_id": "o1"}, 1, id="org_id"),
            pytest.param({"trace_id": "t1"}, 1, id="trace_id"),
            pytest.param({"upstream_user_id": "g-1"}, 1, id="upstream_user_id"),
            pytest.param({"upstream_idp": "google"}, 1, id="upstream_idp"),
            pytest.param({"login_org_id": "lo"}, 1, id="login_org_id"),
            pytest.param({"source_ip": "192.0.2.3"}, 1, id="source_ip"),
            pytest.param({"client_id": "my-client"}, 1, id="client_id"),
            pytest.param({"event": "Success"}, 1, id="event"),
            pytest.param({"stage": "Login"}, 1, id="stage"),
            pytest.param({"request_id": "r1"}, 1, id="request_id"),
            pytest.param({"result": "Denied"}, 1, id="result-from-metadata"),
            pytest.param({"result": "Success"}, 2, id="result-from-outcome"),
            pytest.param({"event_name": "Authentication Request"}, 1, id="event_name"),
            pytest.param(
                {"dt_from": "2024-05-01T11:00:00Z", "dt_to": "2024-05-01T13:00:00Z"}, 2, id="window"
            ),
        ],
    )
    def test_each_parameter(self, tenant: Tenant, params: dict[str, str], count: int) -> None:
        tenant.seed(*AUTH_RECORDS)
        assert len(api(tenant).list_auth_records(**params).auth_audits) == count

    def test_no_matches(self, tenant: Tenant) -> None:
        r = api(tenant).list_auth_records(user_id="nobody", limit=3)
        assert (r.limit, r.auth_audits) == (3, [])


class TestErrors:
    """Failures reach the generated client as its typed exceptions."""

    @pytest.mark.parametrize("token", [None, "nope.nope", "garbage"])
    def test_bad_or_missing_token(self, tenant: Tenant, token: str | None) -> None:
        """G10."""
        with pytest.raises(UnauthorizedException) as info:
            api(tenant, token).list_audits()
        assert info.value.status == 401

    def test_writer_may_not_read(self, tenant: Tenant) -> None:
        with pytest.raises(ForbiddenException):
            api(tenant, "writer").list_auth_records()

    def test_limit_is_checked_by_the_client(self, tenant: Tenant) -> None:
        with pytest.raises(ApiValueError):
            api(tenant).list_audits(limit=501)

    @pytest.mark.parametrize(
        "query",
        ["limit=0", "limit=501", "limit=ten", "dt_from=someday", "dt_to=2024-13-01"],
    )
    def test_bad_parameters_are_400(self, tenant: Tenant, query: str) -> None:
        resp = httpx.get(f"{tenant.url}/agilicus/v1/audits?{query}", headers=tenant.auth("reader"))
        assert resp.status_code == 400
        assert set(resp.json()) == {"error", "code"}

    def test_bad_time_through_the_client(self, tenant: Tenant) -> None:
        with pytest.raises(ApiException) as info:
            api(tenant).list_audits(dt_from="the day after")
        assert info.value.status == 400
        assert "dt_from" in info.value.body

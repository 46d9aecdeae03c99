"""The axonflow SDK's audit reads and writes against a real server: the scenarios of
``shared/compat/kubiya-axonflow-agilicus.md`` §2.8 and more."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.compat.support import Key, Tenant, vendor
from tests.process import Server

os.environ["AXONFLOW_TELEMETRY"] = "off"  # before the SDK is imported; nothing leaves loopback
axonflow = vendor("axonflow")
from axonflow.exceptions import AuthenticationError, AxonFlowError  # noqa: E402
from axonflow.types import (  # noqa: E402
    AuditQueryOptions,
    AuditSearchRequest,
    AuditToolCallRequest,
    TokenUsage,
)

pytestmark = pytest.mark.timeout(60)

GOVERNED: dict[str, Any] = {
    "timestamp": "2025-01-02T14:30:00Z",
    "action": "llm_request",
    "category": "ai",
    "actor": {"id": "123", "email": "analyst@x.com", "role": "analyst"},
    "source": {"client_id": "app_456"},
    "request_id": "req_abc123",
    "message": "Summarize the quarterly report",
    "metadata": {
        "query_hash": "a1b2c3d4e5f6",
        "policy_decision": "redacted",
        "policy_details": {
            "evaluated": ["governance.rate_limit", "compliance.pii_check"],
            "matched_policies": ["compliance.pii_check"],
            "risk_score": 0.1,
            "evaluation_time_ms": 1.5,
        },
        "provider": "openai",
        "model": "gpt-4o",
        "response_time_ms": 1234,
        "tokens_used": 600,
        "cost": 0.012,
        "redacted_fields": ["ssn"],
        "response_sample": "The quarterly report shows...",
        "compliance_flags": ["pii"],
        "security_metrics": {
            "threat_level": "low",
            "patterns_matched": 2,
            "exfiltration_risk": False,
        },
        "decision_id": "dec-1",
        "override_id": "ovr-1",
        "error_message": "one field redacted",
        "team": "finance",
    },
}


def sdk(key: Key | None, url: str) -> Any:
    if key is None:
        return axonflow.AxonFlow(endpoint=f"{url}/axonflow")
    return axonflow.AxonFlow(
        endpoint=f"{url}/axonflow", client_id=key.client_id, client_secret=key.client_secret
    )


def basic(key: Key) -> dict[str, str]:
    raw = f"{key.client_id}:{key.client_secret}".encode()
    return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}


def rows(n: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        {"timestamp": f"2025-01-0{1 + i % 5}T0{i % 10}:00:00Z", "action": "llm_chat", **fields}
        for i in range(n)
    ]


class TestSearch:
    """``search_audit_logs`` filters, pages and counts the tenant's entries."""

    @pytest.mark.asyncio
    async def test_default_search(self, tenant: Tenant) -> None:
        """A1: body ``{"limit":100}``, the envelope, typed entries."""
        stored = tenant.seed(*rows(3), GOVERNED)
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            r = await c.search_audit_logs()
        assert len(r.entries) == 4
        assert (r.total, r.limit, r.offset) == (4, 100, 0)
        assert all(isinstance(e.id, str) and isinstance(e.timestamp, datetime) for e in r.entries)
        newest_first = sorted(stored, key=lambda e: e["timestamp"], reverse=True)
        assert [e.id for e in r.entries] == [e["id"] for e in newest_first]
        assert all(e.tenant_id == tenant.name for e in r.entries)

    @pytest.mark.asyncio
    async def test_email_and_both_time_forms(self, tenant: Tenant) -> None:
        """A2: an aware start and a naive end (taken as UTC); end is inclusive."""
        stored = tenant.seed(
            {"timestamp": "2025-01-01T00:00:00Z", "action": "a", "actor": {"email": "u@x.com"}},
            {"timestamp": "2025-01-01T12:00:00Z", "action": "a", "actor": {"email": "u@x.com"}},
            {"timestamp": "2025-01-01T12:00:00Z", "action": "a", "actor": {"email": "v@x.com"}},
            {"timestamp": "2025-01-02T00:00:00Z", "action": "a", "actor": {"email": "u@x.com"}},
            {"timestamp": "2025-01-02T00:00:01Z", "action": "a", "actor": {"email": "u@x.com"}},
        )
        request = AuditSearchRequest(
            user_email="u@x.com",
            start_time=datetime(2025, 1, 1, 6, tzinfo=UTC),
            end_time=datetime(2025, 1, 2),  # noqa: DTZ001 - the naive form the SDK may send
            limit=10,
        )
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            r = await c.search_audit_logs(request)
        assert [e.id for e in r.entries] == [stored[3]["id"], stored[1]["id"]]
        assert all(e.user_email == "u@x.com" for e in r.entries)

    @pytest.mark.asyncio
    async def test_client_and_action(self, tenant: Tenant) -> None:
        """A3: client_id and action (the request type)."""
        tenant.seed(
            *rows(2, source={"client_id": "c1"}),
            *rows(2, source={"client_id": "c2"}),
            {"action": "sql", "source": {"client_id": "c1"}},
        )
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            r = await c.search_audit_logs(AuditSearchRequest(client_id="c1", action="llm_chat"))
        assert len(r.entries) == 2
        assert all(e.client_id == "c1" and e.request_type == "llm_chat" for e in r.entries)

    @pytest.mark.asyncio
    async def test_request_type_filters_too(self, tenant: Tenant) -> None:
        """The seed documents request_type as a filter; it names the same field as action."""
        tenant.seed(*rows(2), {"action": "sql"})
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            only = await c.search_audit_logs(AuditSearchRequest(request_type="sql"))
            clash = await c.search_audit_logs(AuditSearchRequest(request_type="sql", action="x"))
        assert [e.request_type for e in only.entries] == ["sql"]
        assert (clash.entries, clash.total) == ([], 0)

    @pytest.mark.asyncio
    async def test_offset_pages(self, tenant: Tenant) -> None:
        """A4: disjoint pages; total counts every match."""
        tenant.seed(*rows(5))
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            first = await c.search_audit_logs(AuditSearchRequest(limit=2))
            second = await c.search_audit_logs(AuditSearchRequest(limit=2, offset=2))
            last = await c.search_audit_logs(AuditSearchRequest(limit=2, offset=4))
        ids = [e.id for p in (first, second, last) for e in p.entries]
        assert len(ids) == len(set(ids)) == 5
        assert (first.total, second.total, second.offset, last.offset) == (5, 5, 2, 4)

    @pytest.mark.asyncio
    async def test_no_matches(self, tenant: Tenant) -> None:
        """A8: an empty page with limit >= 1 and a total of 0."""
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            r = await c.search_audit_logs(AuditSearchRequest(user_email="nobody@x.com"))
        assert (r.entries, r.total, r.limit, r.offset) == ([], 0, 100, 0)

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("request_fields", "expected"),
        [
            pytest.param({"decision_id": "dec-1"}, 1, id="decision_id"),
            pytest.param({"override_id": "ovr-1"}, 1, id="override_id"),
            pytest.param({"policy_name": "compliance.pii_check"}, 1, id="policy_name-matched"),
            pytest.param(
                {"policy_name": "governance.rate_limit"}, 0, id="policy_name-only-evaluated"
            ),
            pytest.param({"policy_name": "p-tool"}, 1, id="policy_name-applied"),
            pytest.param({"decision_id": "dec-2"}, 0, id="decision_id-miss"),
        ],
    )
    async def test_metadata_filters(
        self, tenant: Tenant, request_fields: dict[str, str], expected: int
    ) -> None:
        tenant.seed(
            GOVERNED,
            *rows(2),
            {"action": "tool_call", "metadata": {"policies_applied": ["p-tool"]}},
        )
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            r = await c.search_audit_logs(AuditSearchRequest(**request_fields))
        assert (len(r.entries), r.total) == (expected, expected)

    @pytest.mark.asyncio
    async def test_governance_fields_round_trip(self, tenant: Tenant) -> None:
        """Seed 001's entry fields, stored in metadata, come back where the SDK reads them."""
        (stored,) = tenant.seed(GOVERNED)
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            (e,) = (await c.search_audit_logs()).entries
        meta = GOVERNED["metadata"]
        assert e.id == stored["id"]
        assert e.timestamp == datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
        assert (e.request_id, e.user_email, e.client_id) == (
            "req_abc123",
            "analyst@x.com",
            "app_456",
        )
        assert (e.request_type, e.policy_decision) == ("llm_request", "redacted")
        assert e.policy_details == meta["policy_details"]
        assert (e.provider, e.model, e.tokens_used, e.response_time_ms) == (
            "openai",
            "gpt-4o",
            600,
            1234,
        )
        assert e.metadata == meta

    def test_governance_wire_shape(self, tenant: Tenant) -> None:
        """Every documented field, with the documented type, in the documented order."""
        tenant.seed(GOVERNED)
        resp = httpx.post(
            f"{tenant.url}/axonflow/api/v1/audit/search",
            json={"limit": 5},
            headers=basic(tenant.keys["reader"]),
        )
        assert resp.status_code == 200
        body = resp.json()
        assert list(body) == ["entries", "total", "limit", "offset"]
        (entry,) = body["entries"]
        meta = GOVERNED["metadata"]
        assert list(entry)[:23] == [
            "id", "request_id", "timestamp", "user_id", "user_email", "user_role", "client_id",
            "tenant_id", "request_type", "query", "query_hash", "policy_decision",
            "policy_details", "provider", "model", "response_time_ms", "tokens_used", "cost",
            "redacted_fields", "error_message", "response_sample", "compliance_flags",
            "security_metrics",
        ]  # fmt: skip
        assert entry["timestamp"] == "2025-01-02T14:30:00.000000Z"
        assert (entry["user_id"], entry["user_role"]) == (
            123,
            "analyst",
        )  # an integer, as documented
        assert entry["actor_id"] == "123"
        assert entry["query"] == "Summarize the quarterly report"
        for key in ("query_hash", "cost", "redacted_fields", "response_sample", "compliance_flags",
                    "security_metrics", "error_message", "decision_id", "override_id"):  # fmt: skip
            assert entry[key] == meta[key], key

    def test_plain_event_has_typed_defaults(self, tenant: Tenant) -> None:
        """An event with none of the fields still answers every one, never null."""
        tenant.seed({"action": "login", "metadata": {"tokens_used": -4, "cost": "free"}})
        resp = httpx.post(
            f"{tenant.url}/axonflow/api/v1/audit/search",
            json={},
            headers=basic(tenant.keys["reader"]),
        )
        (entry,) = resp.json()["entries"]
        assert None not in entry.values()
        assert "error_message" not in entry
        assert "user_id" not in entry
        assert "actor_id" not in entry
        assert (entry["tokens_used"], entry["cost"], entry["policy_details"]) == (0, 0, {})


class TestTenant:
    """``get_audit_logs_by_tenant`` reads one tenant, if the credential may."""

    @pytest.mark.asyncio
    async def test_own_tenant(self, tenant: Tenant) -> None:
        """A5: ``?limit=50&offset=0``; only that tenant's entries."""
        tenant.seed(*rows(3))
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            r = await c.get_audit_logs_by_tenant(tenant.name)
        assert len(r.entries) == 3
        assert all(e.tenant_id == tenant.name for e in r.entries)
        assert (r.limit, r.offset, r.total) == (50, 0, 3)

    @pytest.mark.asyncio
    async def test_limit_and_offset(self, tenant: Tenant) -> None:
        """A6."""
        stored = tenant.seed(*rows(5))
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            r = await c.get_audit_logs_by_tenant(
                tenant.name, AuditQueryOptions(limit=100, offset=3)
            )
        newest_first = sorted(stored, key=lambda e: (e["timestamp"], e["id"]), reverse=True)
        assert [e.id for e in r.entries] == [e["id"] for e in newest_first[3:]]
        assert (r.limit, r.offset, r.total) == (100, 3, 5)

    @pytest.mark.asyncio
    async def test_other_tenant_is_forbidden(self, tenant: Tenant, other_tenant: Tenant) -> None:
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            with pytest.raises(AxonFlowError, match="HTTP 403") as info:
                await c.get_audit_logs_by_tenant(other_tenant.name)
        assert "FORBIDDEN" in str(info.value)
        assert f"Access denied to tenant '{other_tenant.name}'" in str(info.value)

    def test_forbidden_wire_shape(self, tenant: Tenant) -> None:
        resp = httpx.get(
            f"{tenant.url}/axonflow/api/v1/audit/tenant/other-tenant",
            headers=basic(tenant.keys["reader"]),
        )
        assert resp.status_code == 403
        assert resp.json() == {
            "error": {"code": "FORBIDDEN", "message": "Access denied to tenant 'other-tenant'"}
        }

    def test_operator_reads_any_tenant(self, server: Server, tenant: Tenant) -> None:
        tenant.seed(*rows(2))
        op = {"Authorization": f"Bearer {server.tokens['operator']}", "X-Org-ID": "acme"}
        resp = httpx.get(f"{tenant.url}/axonflow/api/v1/audit/tenant/{tenant.name}", headers=op)
        assert resp.status_code == 200
        assert resp.json()["total"] == 2
        missing = httpx.get(f"{tenant.url}/axonflow/api/v1/audit/tenant/no-such", headers=op)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"

    def test_deprecated_page_size_and_clamping(self, tenant: Tenant) -> None:
        tenant.seed(*rows(3))
        url = f"{tenant.url}/axonflow/api/v1/audit/tenant/{tenant.name}"
        for params, limit in (({"page_size": 2}, 2), ({"limit": 5000}, 1000), ({"limit": 0}, 50)):
            body = httpx.get(url, params=params, headers=basic(tenant.keys["reader"])).json()
            assert body["limit"] == limit, params


class TestErrors:
    """Failures answer ``{"error": {"code", "message"}}`` with seed 001's codes."""

    @pytest.mark.asyncio
    async def test_wrong_secret(self, tenant: Tenant) -> None:
        """A7: a 401 is a plain AxonFlowError on the read path."""
        bad = Key(tenant.keys["reader"].client_id, "wrong", "")
        async with sdk(bad, tenant.url) as c:
            with pytest.raises(AxonFlowError, match=r"^HTTP 401") as info:
                await c.search_audit_logs()
        assert "UNAUTHORIZED" in str(info.value)

    @pytest.mark.asyncio
    async def test_community_mode_is_refused(self, tenant: Tenant) -> None:
        """A9: ``Basic community:`` names no key of ours."""
        async with sdk(None, tenant.url) as c:
            with pytest.raises(AxonFlowError, match=r"^HTTP 401"):
                await c.search_audit_logs()

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            pytest.param(b"{not json", "INVALID_REQUEST", id="invalid-json"),
            pytest.param(b'{"limit": "many"}', "INVALID_REQUEST", id="limit-not-int"),
            pytest.param(b'{"offset": -1}', "INVALID_REQUEST", id="negative-offset"),
            pytest.param(b'{"start_time": "soonish"}', "INVALID_REQUEST", id="bad-time"),
            pytest.param(
                b'{"start_time": "2025-01-02T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"}',
                "INVALID_TIME_RANGE",
                id="start-after-end",
            ),
        ],
    )
    def test_bad_search(self, tenant: Tenant, body: bytes, code: str) -> None:
        headers = {**basic(tenant.keys["reader"]), "Content-Type": "application/json"}
        resp = httpx.post(
            f"{tenant.url}/axonflow/api/v1/audit/search", content=body, headers=headers
        )
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == code
        if body.startswith(b"{not"):
            assert resp.json()["error"]["message"] == "Invalid JSON in request body"

    def test_missing_credential(self, tenant: Tenant) -> None:
        resp = httpx.post(f"{tenant.url}/axonflow/api/v1/audit/search", json={})
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "UNAUTHORIZED"

    def test_x_org_id_of_another_tenant(self, tenant: Tenant, other_tenant: Tenant) -> None:
        headers = {**basic(tenant.keys["reader"]), "X-Org-ID": other_tenant.name}
        resp = httpx.post(f"{tenant.url}/axonflow/api/v1/audit/search", json={}, headers=headers)
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "FORBIDDEN"

    def test_operator_needs_x_org_id(self, server: Server, tenant: Tenant) -> None:
        tenant.seed(*rows(1))
        op = {"Authorization": f"Bearer {server.tokens['operator']}"}
        url = f"{tenant.url}/axonflow/api/v1/audit/search"
        assert httpx.post(url, json={}, headers=op).status_code == 400
        scoped = httpx.post(url, json={}, headers={**op, "X-Org-ID": tenant.name})
        assert scoped.json()["total"] == 1


class TestWrites:
    """``audit_tool_call`` and ``audit_llm_call`` record events the reads then return."""

    def test_tool_call(self, tenant: Tenant) -> None:
        """A10, through the sync wrapper; then A1 shows the entry."""
        call = AuditToolCallRequest(
            tool_name="getUserInfo",
            caller_name="claude_code",
            input={"id": 7},
            output={"name": "Ann"},
            workflow_id="wf-1",
            step_id="st-1",
            user_id="u-9",
            duration_ms=45,
            policies_applied=["pii"],
            success=True,
        )
        with axonflow.AxonFlow.sync(
            f"{tenant.url}/axonflow",
            tenant.keys["admin"].client_id,
            tenant.keys["admin"].client_secret,
        ) as c:
            r = c.audit_tool_call(call)
        assert r.audit_id.startswith("evt_")
        assert r.status == "recorded"
        (native,) = tenant.native()["events"]
        assert native["id"] == r.audit_id
        assert native["timestamp"] == r.timestamp
        assert native["action"] == "tool_call"
        assert native["outcome"] == "success"
        assert native["target"] == {"type": "tool", "id": "getUserInfo"}
        assert native["actor"] == {"id": "u-9", "type": "user"}
        assert native["source"] == {"client_id": tenant.keys["admin"].client_id}
        assert native["metadata"] == {
            "caller_name": "claude_code",
            "input": {"id": 7},
            "output": {"name": "Ann"},
            "workflow_id": "wf-1",
            "step_id": "st-1",
            "response_time_ms": 45,
            "policies_applied": ["pii"],
        }

    @pytest.mark.asyncio
    async def test_tool_call_then_search(self, tenant: Tenant) -> None:
        async with sdk(tenant.keys["admin"], tenant.url) as c:
            r = await c.audit_tool_call(
                AuditToolCallRequest(tool_name="t", success=False, error_message="boom")
            )
            (e,) = (await c.search_audit_logs()).entries
        assert e.id == r.audit_id
        assert (e.request_type, e.response_time_ms) == ("tool_call", 0)
        assert e.metadata == {"error_message": "boom"}

    @pytest.mark.asyncio
    async def test_llm_call(self, tenant: Tenant) -> None:
        async with sdk(tenant.keys["admin"], tenant.url) as c:
            r = await c.audit_llm_call(
                context_id="ctx-1",
                response_summary="Found 5 patients",
                provider="openai",
                model="gpt-4",
                token_usage=TokenUsage(prompt_tokens=100, completion_tokens=50, total_tokens=150),
                latency_ms=250,
                metadata={"team": "care", "provider": "ignored"},
            )
            (e,) = (await c.search_audit_logs()).entries
        assert r.success is True
        assert e.id == r.audit_id
        assert (e.request_id, e.client_id, e.request_type) == (
            "ctx-1",
            tenant.keys["admin"].client_id,
            "llm_request",
        )
        assert (e.provider, e.model, e.tokens_used, e.response_time_ms) == (
            "openai",
            "gpt-4",
            150,
            250,
        )
        assert e.metadata["team"] == "care"
        assert e.metadata["token_usage"] == {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "total_tokens": 150,
        }

    @pytest.mark.asyncio
    async def test_reader_may_not_write(self, tenant: Tenant) -> None:
        async with sdk(tenant.keys["reader"], tenant.url) as c:
            with pytest.raises(AxonFlowError):
                await c.audit_tool_call(AuditToolCallRequest(tool_name="t"))

    @pytest.mark.asyncio
    async def test_wrong_secret_on_write(self, tenant: Tenant) -> None:
        bad = Key(tenant.keys["admin"].client_id, "wrong", "")
        async with sdk(bad, tenant.url) as c:
            with pytest.raises(AuthenticationError):
                await c.audit_tool_call(AuditToolCallRequest(tool_name="t"))

    def test_bad_tool_call(self, tenant: Tenant) -> None:
        url = f"{tenant.url}/axonflow/api/v1/audit/tool-call"
        for body in ({"tool_name": "  "}, {}, {"tool_name": "t", "duration_ms": -1}):
            resp = httpx.post(url, json=body, headers=basic(tenant.keys["admin"]))
            assert resp.status_code == 400, body
            assert resp.json()["error"]["code"] == "INVALID_REQUEST"
        assert tenant.native()["events"] == []

"""An event written through any dialect (or the native API) is readable through every other
dialect and the native API of its tenant, each vendor's real client reading it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.compat.support import Tenant, vendor

os.environ["AXONFLOW_TELEMETRY"] = "off"
axonflow = vendor("axonflow")
kubiya = vendor("kubiya")
vendor("agilicus")
agilicus_api = vendor("agilicus_api")
from axonflow.types import AuditToolCallRequest, TokenUsage  # noqa: E402

pytestmark = pytest.mark.timeout(60)

NATIVE_EVENT: dict[str, Any] = {
    "timestamp": "2026-11-23T10:00:05.123456Z",
    "action": "document.update",
    "category": "users",
    "outcome": "success",
    "actor": {"id": "u-1", "email": "bob@x.io", "role": "editor", "name": "Bob"},
    "target": {"id": "doc-9", "type": "document", "name": "Q3", "org_id": "org-1"},
    "source": {"ip": "10.0.0.1", "client_id": "cli", "service": "docs", "user_agent": "curl/8"},
    "session_id": "s-1",
    "request_id": "r-1",
    "trace_id": "t-1",
    "message": "Bob updated the Q3 report",
    "metadata": {"org_id": "o1", "provider": "openai", "token_id": "tok", "group_id": "g1"},
}


def write_native(tenant: Tenant) -> str:
    (stored,) = tenant.seed(NATIVE_EVENT)
    event_id: str = stored["id"]
    return event_id


def write_tool_call(tenant: Tenant) -> str:
    key = tenant.keys["writer"]
    with axonflow.AxonFlow.sync(f"{tenant.url}/axonflow", key.client_id, key.client_secret) as c:
        result = c.audit_tool_call(
            AuditToolCallRequest(tool_name="kubectl", user_id="u-7", success=False, duration_ms=9)
        )
    audit_id: str = result.audit_id
    return audit_id


def write_llm_call(tenant: Tenant) -> str:
    key = tenant.keys["writer"]

    async def call() -> str:
        async with axonflow.AxonFlow(
            endpoint=f"{tenant.url}/axonflow",
            client_id=key.client_id,
            client_secret=key.client_secret,
        ) as c:
            result = await c.audit_llm_call(
                context_id="ctx-1",
                response_summary="a summary",
                provider="anthropic",
                model="claude",
                token_usage=TokenUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3),
                latency_ms=40,
            )
        audit_id: str = result.audit_id
        return audit_id

    return asyncio.run(call())


WRITERS = [
    pytest.param(write_native, id="native"),
    pytest.param(write_tool_call, id="axonflow-tool-call"),
    pytest.param(write_llm_call, id="axonflow-llm-call"),
]


@pytest.mark.parametrize("write", WRITERS)
def test_readable_everywhere(tenant: Tenant, write: Callable[[Tenant], str]) -> None:
    event_id = write(tenant)
    native = tenant.native(f"/v1/events/{event_id}")
    timestamp = native["timestamp"]

    # Kubiya: list (its default window is the last day of arrivals) and id; an item's
    # ``timestamp`` is the arrival time, its ``event_timestamp`` the event's own.
    k = kubiya.KubiyaClient(api_key=tenant.keys["reader"].token, base_url=tenant.url, max_retries=0)
    (listed,) = k.audit.list(start_time=native["received_at"])
    assert listed == k.audit.describe(event_id)
    assert (listed["id"], listed["timestamp"], listed["event_timestamp"]) == (
        event_id,
        native["received_at"],
        timestamp,
    )
    assert listed["action_type"] == native["action"]
    assert listed["metadata"] == native.get("metadata", {})

    # AxonFlow: search and the tenant's entries.
    key = tenant.keys["reader"]

    async def axon() -> tuple[Any, Any]:
        async with axonflow.AxonFlow(
            endpoint=f"{tenant.url}/axonflow",
            client_id=key.client_id,
            client_secret=key.client_secret,
        ) as c:
            return await c.search_audit_logs(), await c.get_audit_logs_by_tenant(tenant.name)

    searched, by_tenant = asyncio.run(axon())
    assert [e.id for e in searched.entries] == [e.id for e in by_tenant.entries] == [event_id]
    assert searched.entries[0].request_type == native["action"]

    # Agilicus: both lists, strictly validated.
    config = agilicus_api.Configuration(host=f"{tenant.url}/agilicus", access_token=key.token)
    audits = agilicus_api.AuditsApi(agilicus_api.ApiClient(config))
    (audit,) = audits.list_audits().audits
    (auth,) = audits.list_auth_records().auth_audits
    assert audit.action == auth.event_name == native["action"]
    assert audit.time == auth.time

    # Wasabi AiR: list and one record.
    wasabi = httpx.get(f"{tenant.url}/wasabi/api/data/audit", headers=tenant.auth("reader")).json()
    one = httpx.get(
        f"{tenant.url}/wasabi/api/data/audit/{event_id}", headers=tenant.auth("reader")
    ).json()
    assert wasabi["audit_events"] == [one]
    assert (one["id"], one["time"], one["action_key"]) == (event_id, timestamp, native["action"])


def test_native_fields_in_every_vendor_shape(tenant: Tenant) -> None:
    """The mapping of docs/dialects.md, field by field, for a fully populated native event."""
    event_id = write_native(tenant)
    headers = tenant.auth("reader")
    kubiya_item = httpx.get(
        f"{tenant.url}/api/v1/auditing/items/{event_id}", headers=headers
    ).json()
    assert {k: kubiya_item[k] for k in ("org", "email", "category_type", "category_name")} == {
        "org": "o1",
        "email": "bob@x.io",
        "category_type": "users",
        "category_name": "Bob",
    }
    assert (kubiya_item["resource_type"], kubiya_item["resource_text"]) == ("document", "Q3")
    assert kubiya_item["extra"] == {"session_id": "s-1"}

    axon = httpx.post(f"{tenant.url}/axonflow/api/v1/audit/search", json={}, headers=headers)
    (entry,) = axon.json()["entries"]
    assert "user_id" not in entry  # AxonFlow's user_id is an integer; "u-1" is none
    assert {
        k: entry[k] for k in ("actor_id", "user_email", "user_role", "client_id", "provider")
    } == {
        "actor_id": "u-1",
        "user_email": "bob@x.io",
        "user_role": "editor",
        "client_id": "cli",
        "provider": "openai",
    }
    assert (entry["request_id"], entry["query"]) == ("r-1", "Bob updated the Q3 report")

    (audit,) = httpx.get(f"{tenant.url}/agilicus/v1/audits", headers=headers).json()["audits"]
    assert audit == {
        "user_id": "u-1",
        "target_resource_type": "document",
        "target_resource_org_id": "org-1",
        "target_resource_name": "Q3",
        "api_name": "docs",
        "org_id": "o1",
        "time": "2026-11-23T10:00:05.123456Z",
        "action": "document.update",
        "source_ip": "10.0.0.1",
        "target_id": "doc-9",
        "token_id": "tok",
        "trace_id": "t-1",
        "session": "s-1",
        "description": "Bob updated the Q3 report",
    }
    (auth,) = httpx.get(f"{tenant.url}/agilicus/v1/auth_audits", headers=headers).json()[
        "auth_audits"
    ]
    assert (auth["result"], auth["client_id"], auth["user_agent"]) == ("Success", "cli", "curl/8")

    record = httpx.get(f"{tenant.url}/wasabi/api/data/audit/{event_id}", headers=headers).json()
    assert (record["user_id"], record["target_kind"], record["target_id"]) == (
        "u-1",
        "document",
        "doc-9",
    )
    grouped = httpx.get(
        f"{tenant.url}/wasabi/api/data/audit", params={"group_id": "g1"}, headers=headers
    ).json()
    assert grouped["total"] == 1


def test_tenants_stay_apart(tenant: Tenant, other_tenant: Tenant) -> None:
    """No dialect shows one tenant's events to another's key."""
    write_native(tenant)
    headers = other_tenant.auth("reader")
    base = other_tenant.url
    assert (
        httpx.get(f"{base}/api/v1/auditing/items", params={"filter": "{}"}, headers=headers).json()
        == []
    )
    assert (
        httpx.post(f"{base}/axonflow/api/v1/audit/search", json={}, headers=headers).json()["total"]
        == 0
    )
    assert httpx.get(f"{base}/agilicus/v1/audits", headers=headers).json()["audits"] == []
    assert httpx.get(f"{base}/wasabi/api/data/audit", headers=headers).json()["total"] == 0

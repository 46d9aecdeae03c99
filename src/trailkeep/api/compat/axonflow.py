"""AxonFlow's orchestrator audit API (the ``axonflow`` SDK), under ``/axonflow``.

Reads: ``POST /api/v1/audit/search`` and ``GET /api/v1/audit/tenant/{tenant_id}`` answer
``{"entries", "total", "limit", "offset"}`` with ``total`` the number of matches (never null)
and ``limit`` at least 1. Writes: ``POST /api/v1/audit/tool-call`` and
``POST /api/audit/llm-call`` (no ``/v1``, as the SDK calls it). The LLM-governance fields of
an entry (policy decision and details, provider, model, tokens, cost, redacted fields,
compliance flags, security metrics...) live in the event's ``metadata`` under their own
names. Errors are ``{"error": {"code", "message"}}`` with the codes of AxonFlow's
documentation. Field mapping: ``docs/dialects.md``.

Values come in the types AxonFlow documents: ``user_id`` is an integer when the actor id is
one (a canonical decimal within 64 bits), and is left out otherwise (the id then shows only as
``actor_id``). Search conditions are a query tree that storage answers exactly, totals and
offsets included.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from trailkeep.errors import InvalidInputError, PermissionDeniedError
from trailkeep.model.event import StoredEvent
from trailkeep.model.tenant import Permission, Principal, Role
from trailkeep.query.ast import Each, Node, Or, Values
from trailkeep.query.filters import EventQuery
from trailkeep.service.events import EventService

from ..deps import AuthHeader, EventsDep, OrgHeader, ReadTenant, ServicesDep
from ._common import (
    Failure,
    WritePrincipal,
    dialect_route,
    json_response,
    lower_bound,
    metadata_of,
    native_content,
    text_at,
    timestamp_of,
    upper_bound,
)
from ._trees import FALSE, all_of, equals

__all__ = ["entry", "router", "search_query", "user_id_of"]

#: Codes AxonFlow documents, by status; other statuses keep trailkeep's code.
_CODES: Final = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    500: "INTERNAL_ERROR",
}
_KEPT_CODES: Final = frozenset({"INVALID_TIME_RANGE"})


def _render(failure: Failure) -> Response:
    status = 400 if failure.status == 422 else failure.status
    code = failure.code if failure.code in _KEPT_CODES else _CODES.get(status, failure.code)
    message = failure.message
    if failure.code == "INVALID_JSON":
        message = "Invalid JSON in request body"
    body = {"error": {"code": code, "message": message}}
    return json_response(body, status, failure.headers or None)


router = APIRouter(
    prefix="/axonflow", tags=["dialect: AxonFlow"], route_class=dialect_route(_render)
)

DEFAULT_SEARCH_LIMIT: Final = 100
DEFAULT_TENANT_LIMIT: Final = 50
MAX_LIMIT: Final = 1000
_INTEGER: Final = re.compile(r"-?(0|[1-9][0-9]{0,18})")
_INT64: Final = range(-(2**63), 2**63)


# -- entries ----------------------------------------------------------------------------------


def _text(metadata: dict[str, Any], key: str) -> str:
    value = metadata.get(key)
    return value if type(value) is str else ""


def _count(metadata: dict[str, Any], key: str) -> int:
    """A non-negative whole number (the SDK refuses anything else), 0 when it is not one."""
    value = metadata.get(key)
    if type(value) is float and value.is_integer():
        value = int(value)
    return value if type(value) is int and value >= 0 else 0


def _number(metadata: dict[str, Any], key: str) -> int | float:
    value = metadata.get(key)
    if type(value) is int or type(value) is float:
        number: int | float = value
        return number
    return 0


def _list(metadata: dict[str, Any], key: str) -> list[Any]:
    value = metadata.get(key)
    return value if type(value) is list else []


def _object(metadata: dict[str, Any], key: str) -> dict[str, Any]:
    value = metadata.get(key)
    return value if type(value) is dict else {}


def user_id_of(actor_id: str | None) -> int | None:
    """``user_id`` as AxonFlow types it: the actor id as an integer, when it is one that reads
    back as itself (``"123"``, not ``"0123"`` or ``"1e3"``) and fits a signed 64-bit int."""
    if actor_id is None or not _INTEGER.fullmatch(actor_id):
        return None
    number = int(actor_id)
    return number if number in _INT64 else None


def entry(event: StoredEvent) -> dict[str, Any]:
    """An event as an AxonFlow audit entry: every documented field, typed as the SDK's
    ``AuditLogEntry`` requires (``error_message`` only when set), plus ``metadata``."""
    c = event.content
    m = metadata_of(event)
    out: dict[str, Any] = {
        "id": event.id,
        "request_id": text_at(c, "request_id") or "",
        "timestamp": timestamp_of(event),
    }
    actor_id = text_at(c, "actor", "id")
    user_id = user_id_of(actor_id)
    if user_id is not None:
        out["user_id"] = user_id
    out |= {
        "user_email": text_at(c, "actor", "email") or "",
        "user_role": text_at(c, "actor", "role") or "",
        "client_id": text_at(c, "source", "client_id") or "",
        "tenant_id": event.tenant_id,
        "request_type": text_at(c, "action") or "",
        "query": text_at(c, "message") or "",
        "query_hash": _text(m, "query_hash"),
        "policy_decision": _text(m, "policy_decision"),
        "policy_details": _object(m, "policy_details"),
        "provider": _text(m, "provider"),
        "model": _text(m, "model"),
        "response_time_ms": _count(m, "response_time_ms"),
        "tokens_used": _count(m, "tokens_used"),
        "cost": _number(m, "cost"),
        "redacted_fields": _list(m, "redacted_fields"),
    }
    if error := _text(m, "error_message"):
        out["error_message"] = error
    out |= {
        "response_sample": _text(m, "response_sample"),
        "compliance_flags": _list(m, "compliance_flags"),
        "security_metrics": _object(m, "security_metrics"),
    }
    for key in ("decision_id", "override_id", "data_residency", "transfer_basis"):
        if value := _text(m, key):
            out[key] = value
    if actor_id is not None:
        out["actor_id"] = actor_id
    out["metadata"] = m
    return out


def _page(events: list[StoredEvent], total: int, limit: int, offset: int) -> Response:
    body = {"entries": [entry(e) for e in events], "total": total, "limit": limit}
    return json_response(body | {"offset": offset})


def _effective_limit(limit: int, default: int) -> int:
    """Upstream's rule: 0 or less means the default, more than 1,000 means 1,000."""
    return default if limit <= 0 else min(limit, MAX_LIMIT)


# -- search -----------------------------------------------------------------------------------

_Str = Field(default=None, max_length=512)


class SearchIn(BaseModel):
    """The search body; like upstream's decoder, unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    user_email: str | None = _Str
    client_id: str | None = _Str
    start_time: str | None = Field(default=None, max_length=64)
    end_time: str | None = Field(default=None, max_length=64)
    action: str | None = _Str
    request_type: str | None = _Str
    decision_id: str | None = _Str
    policy_name: str | None = _Str
    override_id: str | None = _Str
    limit: int = DEFAULT_SEARCH_LIMIT
    offset: int = 0


_POLICY: Final = ("metadata", "policy_name")
#: Lists of policy names an entry carries, either of which ``policy_name`` matches.
_POLICY_LISTS: Final = (
    ("metadata", "policy_details", "matched_policies"),
    ("metadata", "policies_applied"),
)


def _policy(name: str) -> Node:
    """Entries naming the policy as theirs, as matched, or as applied."""
    in_lists = [Each(path, Values((), (name,))) for path in _POLICY_LISTS]
    return Or((equals(_POLICY, name), *in_lists))


def _request_type(body: SearchIn) -> Node | None:
    """``action`` and the older ``request_type`` both name the request type (native
    ``action``); two different ones match nothing."""
    types = {t for t in (body.action, body.request_type) if t}
    if len(types) > 1:
        return FALSE
    return equals(("action",), types.pop()) if types else None


def search_query(body: SearchIn, limit: int) -> EventQuery:
    """The page a search body asks for, newest first, as one query for storage."""
    start = lower_bound(body.start_time, "start_time")
    end = upper_bound(body.end_time, "end_time", inclusive=True)
    if start is not None and end is not None and start >= end:
        raise InvalidInputError("start_time must be before end_time", code="INVALID_TIME_RANGE")
    where = all_of(
        [
            equals(("actor", "email"), body.user_email) if body.user_email else None,
            equals(("client_id",), body.client_id) if body.client_id else None,
            _request_type(body),
            equals(("metadata", "decision_id"), body.decision_id) if body.decision_id else None,
            equals(("metadata", "override_id"), body.override_id) if body.override_id else None,
            _policy(body.policy_name) if body.policy_name else None,
        ]
    )
    return EventQuery(where=where, start=start, end=end, limit=limit, offset=body.offset)


@router.post("/api/v1/audit/search")
async def search_audit_logs(
    tenant: ReadTenant, events: EventsDep, body: SearchIn | None = None
) -> Response:
    """Search the tenant's entries, newest first; ``total`` counts every match."""
    body = body or SearchIn()
    if body.offset < 0:
        raise InvalidInputError("offset must be 0 or more")
    limit = _effective_limit(body.limit, DEFAULT_SEARCH_LIMIT)
    query = search_query(body, limit)
    found = await events.aselect(tenant, query)
    return _page(found, await events.acount(tenant, query), limit, body.offset)


# -- one tenant's entries ---------------------------------------------------------------------


def _reader_principal(
    services: ServicesDep, authorization: AuthHeader, org: OrgHeader = None
) -> Principal:
    return services.auth.authenticate(authorization, org, Permission.READ)


@router.get("/api/v1/audit/tenant/{tenant_id}")
async def tenant_audit_logs(
    tenant_id: str,
    principal: Annotated[Principal, Depends(_reader_principal)],
    services: ServicesDep,
    events: EventsDep,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int | None, Query(description="Deprecated spelling of limit.")] = None,
) -> Response:
    """Recent entries of one tenant: the key's own, or any tenant for an operator key."""
    if principal.role is Role.OPERATOR:
        await run_in_threadpool(services.tenants.get_tenant, tenant_id)  # 404 when unknown
    elif principal.tenant_id != tenant_id:
        raise PermissionDeniedError(f"Access denied to tenant '{tenant_id}'")
    requested = limit if limit is not None else page_size
    effective = _effective_limit(requested or 0, DEFAULT_TENANT_LIMIT)
    query = EventQuery(limit=effective, offset=offset)
    found = await events.aselect(tenant_id, query)
    return _page(found, await events.acount(tenant_id, query), effective, offset)


# -- writes -----------------------------------------------------------------------------------


class ToolCallIn(BaseModel):
    """``AuditToolCallRequest`` as the SDK sends it (``exclude_none``)."""

    model_config = ConfigDict(extra="ignore")

    tool_name: str = Field(min_length=1, max_length=512)
    caller_name: str | None = _Str
    tool_type: str | None = _Str
    input: dict[str, JsonValue] | None = None
    output: dict[str, JsonValue] | None = None
    workflow_id: str | None = _Str
    step_id: str | None = _Str
    user_id: str | None = _Str
    duration_ms: int | None = Field(default=None, ge=0)
    policies_applied: list[str] | None = None
    success: bool | None = None
    error_message: str | None = Field(default=None, max_length=4096)


class TokenUsageIn(BaseModel):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)


class LlmCallIn(BaseModel):
    """The body of ``audit_llm_call`` (Gateway Mode's second step)."""

    model_config = ConfigDict(extra="ignore")

    context_id: str | None = _Str
    client_id: str | None = _Str
    response_summary: str | None = Field(default=None, max_length=4096)
    provider: str | None = _Str
    model: str | None = _Str
    token_usage: TokenUsageIn | None = None
    latency_ms: int | None = Field(default=None, ge=0)
    metadata: dict[str, JsonValue] | None = None


def _outcome(success: bool | None) -> str:
    return "unknown" if success is None else "success" if success else "failure"


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def tool_call_content(call: ToolCallIn, client_id: str) -> dict[str, Any]:
    """A tool call as a native event: the tool is the target, its details are metadata."""
    if not call.tool_name.strip():
        raise InvalidInputError("tool_name is required and cannot be empty")
    content: dict[str, Any] = {
        "action": "tool_call",
        "category": "tools",
        "outcome": _outcome(call.success),
        "target": {"type": "tool", "id": call.tool_name},
        "source": {"client_id": client_id},
        "metadata": _present(
            {
                "caller_name": call.caller_name,
                "tool_type": call.tool_type,
                "input": call.input,
                "output": call.output,
                "workflow_id": call.workflow_id,
                "step_id": call.step_id,
                "response_time_ms": call.duration_ms,
                "policies_applied": call.policies_applied,
                "error_message": call.error_message,
            }
        ),
    }
    if call.user_id:
        content["actor"] = {"id": call.user_id, "type": "user"}
    return content


def llm_call_content(call: LlmCallIn, client_id: str) -> dict[str, Any]:
    """An LLM call as a native event. The caller's ``metadata`` keys are kept as they are,
    except where they collide with a field the call itself sets, which wins."""
    usage = call.token_usage
    metadata = dict(call.metadata or {}) | _present(
        {
            "provider": call.provider,
            "model": call.model,
            "response_sample": call.response_summary,
            "response_time_ms": call.latency_ms,
            "tokens_used": usage.total_tokens if usage else None,
            "token_usage": usage.model_dump() if usage else None,
        }
    )
    return _present(
        {
            "action": "llm_request",
            "category": "ai",
            "outcome": "success",
            "request_id": call.context_id or None,
            "source": {"client_id": call.client_id or client_id},
            "metadata": metadata,
        }
    )


async def _record(
    request: Request, events: EventService, tenant: str, content: dict[str, Any]
) -> StoredEvent:
    (appended,) = await events.ingest(tenant, [native_content(content)], batch=False)
    request.app.state.metrics.events_ingested.inc(0 if appended.replayed else 1)
    stored: StoredEvent = appended.event
    return stored


@router.post("/api/v1/audit/tool-call", status_code=201)
async def audit_tool_call(
    request: Request, call: ToolCallIn, principal: WritePrincipal, events: EventsDep
) -> Response:
    """Record a non-LLM tool call; answers ``{"audit_id", "status", "timestamp"}``."""
    assert principal.tenant_id is not None
    content = tool_call_content(call, principal.client_id)
    stored = await _record(request, events, principal.tenant_id, content)
    body = {"audit_id": stored.id, "status": "recorded", "timestamp": timestamp_of(stored)}
    return json_response(body, 201)


@router.post("/api/audit/llm-call", status_code=201)
async def audit_llm_call(
    request: Request, call: LlmCallIn, principal: WritePrincipal, events: EventsDep
) -> Response:
    """Record an LLM call made outside AxonFlow; answers ``{"success", "audit_id"}``."""
    assert principal.tenant_id is not None
    content = llm_call_content(call, principal.client_id)
    stored = await _record(request, events, principal.tenant_id, content)
    return json_response({"success": True, "audit_id": stored.id}, 201)

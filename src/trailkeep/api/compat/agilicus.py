"""Agilicus's ``AuditsApi`` (the ``agilicus`` package's generated ``agilicus_api`` client),
under ``/agilicus``: ``GET /v1/audits`` (``list_audits``) and ``GET /v1/auth_audits``
(``list_auth_records``).

The generated client checks every response type strictly, so: ``limit`` is always a JSON
int, list keys are always present (``[]`` when nothing matches), a field the event lacks is
omitted rather than null, every value is a string, and ``time`` is RFC 3339 with ``Z``.
Records come newest first; ``dt_from`` is inclusive and ``dt_to`` exclusive, in any form of
DESIGN §6 (``now-1day``, ``today``, empty for no bound). List parameters arrive as repeated
keys. Every event is listed by both endpoints, each in its own shape. Field mapping:
``docs/dialects.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.responses import Response

from trailkeep.model.event import StoredEvent
from trailkeep.service.dialects import DialectQuery

from ..deps import ReadTenant
from ._common import (
    Failure,
    ReaderDep,
    dialect_route,
    json_response,
    lower_bound,
    metadata_of,
    org_of,
    text_at,
    timestamp_of,
    upper_bound,
)

__all__ = ["audit_record", "auth_record", "router"]


def _render(failure: Failure) -> Response:
    body = {"error": failure.message, "code": failure.code}
    return json_response(body, failure.status, failure.headers or None)


router = APIRouter(
    prefix="/agilicus", tags=["dialect: Agilicus"], route_class=dialect_route(_render)
)

DEFAULT_LIMIT: Final = 500
Limit = Annotated[int, Query(ge=1, le=500, description="Rows to return (1..500).")]
Param = Annotated[str | None, Query(max_length=512)]
ListParam = Annotated[list[str] | None, Query(max_length=512)]
TimeParam = Annotated[
    str | None, Query(max_length=64, description="DESIGN §6 forms: now, today, now-1day...")
]

_META_STRINGS_AUDIT: Final = ("secondary_id", "tertiary_id", "parent_id", "grandparent_id")
_META_STRINGS_AUTH: Final = (
    "upstream_user_id",
    "org_name",
    "event",
    "issuer",
    "application_name",
    "login_org_id",
    "login_org_name",
    "upstream_idp",
    "stage",
)
_RESULTS: Final = {"success": "Success", "failure": "Failure"}


def _put(out: dict[str, Any], key: str, value: str | None) -> None:
    if value is not None:
        out[key] = value


def _attributes(metadata: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``metadata.audit_attributes``, keeping only fields of the types the client accepts."""
    raw = metadata.get("audit_attributes")
    if type(raw) is not list:
        return None
    out = []
    for attribute in raw:
        if type(attribute) is not dict:
            continue
        kept = {
            k: attribute[k]
            for k in ("attribute_id", "attribute_type")
            if type(attribute.get(k)) is str
        }
        for k in ("attribute_org_id", "attribute_name"):
            if k in attribute and (attribute[k] is None or type(attribute[k]) is str):
                kept[k] = attribute[k]
        out.append(kept)
    return out


def audit_record(event: StoredEvent) -> dict[str, Any]:
    """An event as an Agilicus ``Audit``."""
    c = event.content
    m = metadata_of(event)
    out: dict[str, Any] = {}
    _put(out, "user_id", text_at(c, "actor", "id"))
    _put(out, "target_resource_type", text_at(c, "target", "type"))
    _put(out, "target_resource_org_id", text_at(c, "target", "org_id"))
    _put(out, "target_resource_name", text_at(c, "target", "name"))
    _put(out, "api_name", text_at(c, "source", "service"))
    out["org_id"] = org_of(event)
    out["time"] = timestamp_of(event)
    _put(out, "action", text_at(c, "action"))
    _put(out, "source_ip", text_at(c, "source", "ip"))
    _put(out, "target_id", text_at(c, "target", "id"))
    _put(out, "token_id", text_at(m, "token_id"))
    _put(out, "trace_id", text_at(c, "trace_id"))
    _put(out, "session", text_at(c, "session_id"))
    for key in _META_STRINGS_AUDIT:
        _put(out, key, text_at(m, key))
    attributes = _attributes(m)
    if attributes is not None:
        out["audit_attributes"] = attributes
    _put(out, "description", text_at(c, "message"))
    return out


def auth_record(event: StoredEvent) -> dict[str, Any]:
    """An event as an Agilicus ``AuthAudits`` record. ``result`` is ``metadata.result`` when
    the writer set one, else ``Success``/``Failure`` from the outcome."""
    c = event.content
    m = metadata_of(event)
    out: dict[str, Any] = {}
    _put(out, "user_id", text_at(c, "actor", "id"))
    out["org_id"] = org_of(event)
    out["time"] = timestamp_of(event)
    _put(out, "event_name", text_at(c, "action"))
    _put(out, "source_ip", text_at(c, "source", "ip"))
    _put(out, "token_id", text_at(m, "token_id"))
    _put(out, "trace_id", text_at(c, "trace_id"))
    _put(out, "session", text_at(c, "session_id"))
    _put(out, "client_id", text_at(c, "source", "client_id"))
    for key in _META_STRINGS_AUTH:
        _put(out, key, text_at(m, key))
    outcome = c.get("outcome")
    _put(
        out, "result", text_at(m, "result") or _RESULTS.get(outcome if type(outcome) is str else "")
    )
    _put(out, "user_agent", text_at(c, "source", "user_agent"))
    _put(out, "request_id", text_at(c, "request_id"))
    return out


def _given(values: Mapping[str, str | None]) -> dict[str, str]:
    """Parameters that were sent non-empty (the spec's default for each is ``""``)."""
    return {k: v for k, v in values.items() if v}


def _attribute_check(
    one: Mapping[str, str | None], lists: Mapping[str, list[str] | None]
) -> Callable[[StoredEvent], bool] | None:
    """Records with one ``audit_attributes`` entry meeting every attribute condition."""
    exact = _given(one)
    choices = {k: set(v) for k, v in lists.items() if v}
    if not exact and not choices:
        return None

    def fits(attribute: dict[str, Any]) -> bool:
        return all(attribute.get(k) == v for k, v in exact.items()) and all(
            attribute.get(k) in allowed for k, allowed in choices.items()
        )

    def where(event: StoredEvent) -> bool:
        return any(fits(a) for a in _attributes(metadata_of(event)) or [])

    return where


def _selection(
    pushed: Mapping[str, str | None],
    shown: Mapping[str, str | None],
    project: Callable[[StoredEvent], dict[str, Any]],
    dt_from: str | None,
    dt_to: str | None,
    *checks: Callable[[StoredEvent], bool] | None,
) -> DialectQuery:
    """Push ``pushed`` (native filter → value) down; match ``shown`` on the projected record.

    TODO(dialects): the metadata conditions could be pushed down as ``metadata.<key>:value``
    terms (``trailkeep.query.compile_query``); the projected ones are derived values no column
    or JSON path holds, so they stay a predicate.
    """
    filters = {name: [value] for name, value in _given(pushed).items()}
    wanted = _given(shown)
    tests = [c for c in checks if c is not None]
    if wanted:
        tests.append(lambda e: all(project(e).get(k) == v for k, v in wanted.items()))
    where = (lambda e: all(t(e) for t in tests)) if tests else None
    start = lower_bound(dt_from, "dt_from")
    end = upper_bound(dt_to, "dt_to")
    return DialectQuery(filters, start, end, where=where)


@router.get("/v1/audits", response_model=dict[str, Any])
def list_audits(
    tenant: ReadTenant,
    reader: ReaderDep,
    limit: Limit = DEFAULT_LIMIT,
    user_id: Param = None,
    dt_from: TimeParam = None,
    dt_to: TimeParam = None,
    action: Param = None,
    target_id: Param = None,
    token_id: Param = None,
    api_name: Param = None,
    target_resource_type: Param = None,
    org_id: Param = None,
    attribute_type: Param = None,
    attribute_id: Param = None,
    attribute_org_id: Param = None,
    resources_behind_connector_id: Param = None,
    attribute_type_list: ListParam = None,
    attribute_id_list: ListParam = None,
) -> Response:
    """Audit records, newest first: ``{"limit", "audits"}``."""
    connector = resources_behind_connector_id or None

    def behind_connector(event: StoredEvent) -> bool:
        return text_at(metadata_of(event), "connector_id") == connector

    selection = _selection(
        {
            "actor.id": user_id,
            "action": action,
            "target.id": target_id,
            "target.type": target_resource_type,
        },
        {"api_name": api_name, "token_id": token_id, "org_id": org_id},
        audit_record,
        dt_from,
        dt_to,
        _attribute_check(
            {
                "attribute_type": attribute_type,
                "attribute_id": attribute_id,
                "attribute_org_id": attribute_org_id,
            },
            {"attribute_type": attribute_type_list, "attribute_id": attribute_id_list},
        ),
        behind_connector if connector else None,
    )
    window = reader.window(tenant, selection, offset=0, limit=limit)
    return json_response({"limit": limit, "audits": [audit_record(e) for e in window.events]})


@router.get("/v1/auth_audits", response_model=dict[str, Any])
def list_auth_records(
    tenant: ReadTenant,
    reader: ReaderDep,
    limit: Limit = DEFAULT_LIMIT,
    user_id: Param = None,
    dt_from: TimeParam = None,
    dt_to: TimeParam = None,
    org_id: Param = None,
    session_id: Param = None,
    trace_id: Param = None,
    upstream_user_id: Param = None,
    upstream_idp: Param = None,
    login_org_id: Param = None,
    source_ip: Param = None,
    client_id: Param = None,
    event: Param = None,
    stage: Param = None,
    request_id: Param = None,
    result: Param = None,
    event_name: Param = None,
) -> Response:
    """Authentication records, newest first: ``{"limit", "auth_audits"}``."""
    selection = _selection(
        {
            "actor.id": user_id,
            "session_id": session_id,
            "trace_id": trace_id,
            "source.ip": source_ip,
            "client_id": client_id,
            "request_id": request_id,
            "action": event_name,
        },
        {
            "org_id": org_id,
            "upstream_user_id": upstream_user_id,
            "upstream_idp": upstream_idp,
            "login_org_id": login_org_id,
            "event": event,
            "stage": stage,
            "result": result,
        },
        auth_record,
        dt_from,
        dt_to,
    )
    window = reader.window(tenant, selection, offset=0, limit=limit)
    return json_response({"limit": limit, "auth_audits": [auth_record(e) for e in window.events]})

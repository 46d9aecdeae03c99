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

Each parameter matches the field of that name as the record shows it, derived ones included
(``org_id`` falls back to the tenant, ``result`` to the outcome), as a condition of the query
tree that storage answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.responses import Response

from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import And, Each, Node, Not, Or, Values
from trailkeep.query.filters import EventQuery

from ..deps import EventsDep, ReadTenant
from ._common import (
    Failure,
    dialect_route,
    json_response,
    lower_bound,
    metadata_of,
    org_of,
    text_at,
    timestamp_of,
    upper_bound,
)
from ._trees import FALSE, Path, all_of, equals, first_shown_equals, shows

__all__ = ["audit_query", "audit_record", "auth_query", "auth_record", "router"]


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


_ORG: Final[tuple[Path, ...]] = (("metadata", "org_id"),)
_RESULT: Final[Path] = ("metadata", "result")
_OUTCOMES: Final = {shown: outcome for outcome, shown in _RESULTS.items()}
#: ``list_audits`` parameters → the stored field each matches.
AUDIT_FIELDS: Final[dict[str, Path]] = {
    "user_id": ("actor", "id"),
    "action": ("action",),
    "target_id": ("target", "id"),
    "target_resource_type": ("target", "type"),
    "api_name": ("source", "service"),
    "token_id": ("metadata", "token_id"),
    "resources_behind_connector_id": ("metadata", "connector_id"),
}
#: ``list_auth_records`` parameters → the stored field each matches.
AUTH_FIELDS: Final[dict[str, Path]] = {
    "user_id": ("actor", "id"),
    "session_id": ("session_id",),
    "trace_id": ("trace_id",),
    "source_ip": ("source", "ip"),
    "client_id": ("client_id",),
    "request_id": ("request_id",),
    "event_name": ("action",),
    **{key: ("metadata", key) for key in ("upstream_user_id", "upstream_idp", "login_org_id")},
    **{key: ("metadata", key) for key in ("event", "stage")},
}


def _org(org_id: str, tenant: str) -> Node:
    """Records showing ``org_id``: their ``metadata.org_id``, else the tenant."""
    return first_shown_equals(_ORG, org_id, fallback=tenant)


def _result(result: str) -> Node:
    """Records showing ``result``: their ``metadata.result``, else ``Success``/``Failure``
    from the outcome."""
    shown = equals(_RESULT, result)
    outcome = _OUTCOMES.get(result)
    if outcome is None:
        return shown
    return Or((shown, And((Not(shows(_RESULT)), equals(("outcome",), outcome)))))


def _attributes_match(
    one: Mapping[str, str | None], lists: Mapping[str, Sequence[str] | None]
) -> Node | None:
    """Records with one ``audit_attributes`` entry meeting every attribute condition."""
    exact = [Values((k,), (v,)) for k, v in _given(one).items()]
    choices = [Values((k,), tuple(v)) for k, v in lists.items() if v]
    where = all_of([*exact, *choices])
    return None if where is None else Each(("metadata", "audit_attributes"), where)


def _query(
    fields: Mapping[str, Path],
    params: Mapping[str, str | None],
    dt_from: str | None,
    dt_to: str | None,
    limit: int,
    *more: Node | None,
) -> EventQuery:
    start = lower_bound(dt_from, "dt_from")
    end = upper_bound(dt_to, "dt_to")
    empty = start is not None and end is not None and start >= end
    where = all_of(
        [
            FALSE if empty else None,
            *(equals(fields[name], value) for name, value in _given(params).items()),
            *more,
        ]
    )
    if empty:
        start = end = None
    return EventQuery(where=where, start=start, end=end, limit=limit)


def audit_query(
    tenant: str,
    params: Mapping[str, str | None],
    attributes: Mapping[str, str | None],
    attribute_lists: Mapping[str, Sequence[str] | None],
    dt_from: str | None,
    dt_to: str | None,
    limit: int,
) -> EventQuery:
    """The newest ``limit`` audit records a ``list_audits`` call selects.

    Args:
        params: ``AUDIT_FIELDS`` parameters and ``org_id`` → value.
        attributes: ``attribute_type``/``attribute_id``/``attribute_org_id`` → value.
        attribute_lists: ``attribute_type``/``attribute_id`` → the values any of which match.
    """
    direct = {k: v for k, v in params.items() if k != "org_id"}
    org = params.get("org_id")
    return _query(
        AUDIT_FIELDS,
        direct,
        dt_from,
        dt_to,
        limit,
        _org(org, tenant) if org else None,
        _attributes_match(attributes, attribute_lists),
    )


def auth_query(
    tenant: str,
    params: Mapping[str, str | None],
    dt_from: str | None,
    dt_to: str | None,
    limit: int,
) -> EventQuery:
    """The newest ``limit`` authentication records a ``list_auth_records`` call selects.

    Args:
        params: ``AUTH_FIELDS`` parameters, ``org_id`` and ``result`` → value.
    """
    direct = {k: v for k, v in params.items() if k not in ("org_id", "result")}
    org, result = params.get("org_id"), params.get("result")
    return _query(
        AUTH_FIELDS,
        direct,
        dt_from,
        dt_to,
        limit,
        _org(org, tenant) if org else None,
        _result(result) if result else None,
    )


@router.get("/v1/audits", response_model=dict[str, Any])
async def list_audits(
    tenant: ReadTenant,
    events: EventsDep,
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
    query = audit_query(
        tenant,
        {
            "user_id": user_id,
            "action": action,
            "target_id": target_id,
            "token_id": token_id,
            "api_name": api_name,
            "target_resource_type": target_resource_type,
            "org_id": org_id,
            "resources_behind_connector_id": resources_behind_connector_id,
        },
        {
            "attribute_type": attribute_type,
            "attribute_id": attribute_id,
            "attribute_org_id": attribute_org_id,
        },
        {"attribute_type": attribute_type_list, "attribute_id": attribute_id_list},
        dt_from,
        dt_to,
        limit,
    )
    found = [audit_record(e) for e in await events.aselect(tenant, query)]
    return json_response({"limit": limit, "audits": found})


@router.get("/v1/auth_audits", response_model=dict[str, Any])
async def list_auth_records(
    tenant: ReadTenant,
    events: EventsDep,
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
    query = auth_query(
        tenant,
        {
            "user_id": user_id,
            "org_id": org_id,
            "session_id": session_id,
            "trace_id": trace_id,
            "upstream_user_id": upstream_user_id,
            "upstream_idp": upstream_idp,
            "login_org_id": login_org_id,
            "source_ip": source_ip,
            "client_id": client_id,
            "event": event,
            "stage": stage,
            "request_id": request_id,
            "result": result,
            "event_name": event_name,
        },
        dt_from,
        dt_to,
        limit,
    )
    found = [auth_record(e) for e in await events.aselect(tenant, query)]
    return json_response({"limit": limit, "auth_audits": found})

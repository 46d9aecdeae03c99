"""Wasabi AiR's audit API (no client library: ``shared/seeds/003_*`` is the spec), under
``/wasabi``: ``GET /api/data/audit`` (list), ``GET /api/data/audit/{id}`` (one record) and
``GET /api/data/audit/filters`` (target kinds with their action keys).

Lists page by a 0-based ``page`` of ``count`` records and report the ``total`` of matches.
``from`` and ``to`` bound the time strictly ("newer than", "older than"). ``order`` names the
field records are sorted by (``ctime`` by default, oldest first as in the spec's example); a
leading ``-`` sorts descending. Field mapping: ``docs/dialects.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from starlette.responses import Response

from trailkeep.errors import InvalidInputError
from trailkeep.model.event import StoredEvent
from trailkeep.query.filters import Sort
from trailkeep.service.dialects import DialectQuery, DialectReader

from ..deps import EventsDep, ReadTenant
from ._common import (
    Failure,
    ReaderDep,
    dialect_route,
    json_response,
    lower_bound,
    metadata_of,
    text_at,
    timestamp_of,
    upper_bound,
)

__all__ = ["record", "router"]


def _render(failure: Failure) -> Response:
    body = {"error": failure.message, "code": failure.code}
    return json_response(body, failure.status, failure.headers or None)


router = APIRouter(
    prefix="/wasabi/api/data/audit",
    tags=["dialect: Wasabi AiR"],
    route_class=dialect_route(_render),
)

DEFAULT_COUNT: Final = 20
MAX_COUNT: Final = 1000
#: ``order`` values: the record field each sorts by (``ctime`` is the time).
ORDERS: Final = ("user_id", "group_id", "target_kind", "action_key", "ctime")
Param = Annotated[str | None, Query(max_length=512)]


def record(event: StoredEvent) -> dict[str, Any]:
    """An event as a Wasabi AiR audit record: the spec's six string fields, and
    ``additional_id`` when the event has one."""
    c = event.content
    out = {
        "id": event.id,
        "user_id": text_at(c, "actor", "id") or "",
        "action_key": text_at(c, "action") or "",
        "target_kind": text_at(c, "target", "type") or "",
        "target_id": text_at(c, "target", "id") or "",
        "time": timestamp_of(event),
    }
    additional = text_at(metadata_of(event), "additional_id")
    if additional is not None:
        out["additional_id"] = additional
    return out


def _group_of(event: StoredEvent) -> str:
    return text_at(metadata_of(event), "group_id") or ""


def _parse_order(order: str | None) -> tuple[str, bool]:
    """``(field, descending)`` from ``order``."""
    name = (order or "ctime").strip()
    descending = name.startswith("-")
    name = name.removeprefix("-")
    if name not in ORDERS:
        raise InvalidInputError(f"order: {order!r} is not one of {', '.join(ORDERS)}")
    return name, descending


def _sorted_page(
    reader: DialectReader,
    tenant: str,
    selection: DialectQuery,
    field: str,
    desc: bool,
    page: int,
    count: int,
) -> tuple[list[dict[str, Any]], int]:
    """Order by a field no index serves: sort every match (within the scan budget) in memory.

    TODO(dialects): an ORDER BY on the field in storage, so no request needs the scan budget.
    """
    keyed = []
    for event in reader.scan(tenant, selection):
        shown = record(event)
        key = _group_of(event) if field == "group_id" else shown[field]
        keyed.append((key, shown["time"], shown["id"], shown))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]), reverse=desc)
    start = page * count
    return [k[3] for k in keyed[start : start + count]], len(keyed)


@router.get("", response_model=dict[str, Any])
def list_audit_events(
    tenant: ReadTenant,
    reader: ReaderDep,
    user_id: Param = None,
    group_id: Param = None,
    target_kind: Param = None,
    target_id: Param = None,
    action_key: Param = None,
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[str | None, Query(max_length=32)] = None,
    page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_COUNT)] = DEFAULT_COUNT,
) -> Response:
    """Audit records: ``{"audit_events", "total", "page"}``."""
    field, desc = _parse_order(order)
    pushed = {
        "actor.id": user_id,
        "target.type": target_kind,
        "target.id": target_id,
        "action": action_key,
    }
    group = group_id or None
    selection = DialectQuery(
        {name: [value] for name, value in pushed.items() if value},
        lower_bound(from_, "from", exclusive=True),
        upper_bound(to, "to"),
        Sort.DESC if desc else Sort.ASC,
        # TODO(dialects): push down as ``metadata.group_id:…`` (trailkeep.query.compile_query).
        (lambda e: _group_of(e) == group) if group else None,
    )
    if field == "ctime":
        window = reader.window(
            tenant, selection, offset=page * count, limit=count, count_total=True
        )
        events, total = [record(e) for e in window.events], window.total
    else:
        events, total = _sorted_page(reader, tenant, selection, field, desc, page, count)
    return json_response({"audit_events": events, "total": total, "page": page})


@router.get("/filters", response_model=dict[str, Any])
def list_filters(tenant: ReadTenant, reader: ReaderDep) -> Response:
    """Every target kind in the tenant's records with the action keys seen on it."""
    kinds: dict[str, set[str]] = {}
    for event in reader.scan(tenant, DialectQuery()):
        kind = text_at(event.content, "target", "type")
        action = text_at(event.content, "action")
        if kind and action:
            kinds.setdefault(kind, set()).add(action)
    body = [{"name": k, "action_keys": sorted(v)} for k, v in sorted(kinds.items())]
    return json_response({"target_kinds": body})


@router.get("/{audit_id}", response_model=dict[str, Any])
def get_audit_event(audit_id: str, tenant: ReadTenant, events: EventsDep) -> Response:
    """One audit record by id."""
    return json_response(record(events.get(tenant, audit_id)))

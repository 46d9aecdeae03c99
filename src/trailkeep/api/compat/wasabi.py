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
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.events import EventService

from ..deps import EventsDep, ReadTenant
from ._common import (
    Failure,
    dialect_route,
    json_response,
    lower_bound,
    metadata_of,
    text_at,
    timestamp_of,
    upper_bound,
)
from ._trees import FALSE, Path, all_of, equals, shows

__all__ = ["ORDERS", "filters_of", "list_query", "record", "router"]


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
#: ``order`` values → the stored field each sorts by (``ctime``, the time, is the default
#: order of every query).
ORDERS: Final[dict[str, Path | None]] = {
    "user_id": ("actor", "id"),
    "group_id": ("metadata", "group_id"),
    "target_kind": ("target", "type"),
    "action_key": ("action",),
    "ctime": None,
}
#: Filter parameters → the stored field each matches.
FILTERS: Final[dict[str, Path]] = {
    "user_id": ("actor", "id"),
    "group_id": ("metadata", "group_id"),
    "target_kind": ("target", "type"),
    "target_id": ("target", "id"),
    "action_key": ("action",),
}
_KIND: Final[Path] = ("target", "type")
_ACTION: Final[Path] = ("action",)
#: Distinct values asked for at first by ``/filters``; doubled until every one is listed.
_FIRST_DISTINCT: Final = 256
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


def _parse_order(order: str | None) -> tuple[Path | None, bool]:
    """``(field, descending)`` from ``order``."""
    name = (order or "ctime").strip()
    descending = name.startswith("-")
    name = name.removeprefix("-")
    if name not in ORDERS:
        raise InvalidInputError(f"order: {order!r} is not one of {', '.join(ORDERS)}")
    return ORDERS[name], descending


def list_query(
    params: dict[str, str | None],
    from_: str | None,
    to: str | None,
    order: str | None,
    page: int,
    count: int,
) -> EventQuery:
    """The page a list request selects, as one query for storage.

    Args:
        params: filter parameter (``FILTERS``) → value; empty or None means no filter.
    """
    field, desc = _parse_order(order)
    start = lower_bound(from_, "from", exclusive=True)
    end = upper_bound(to, "to")
    empty = start is not None and end is not None and start >= end
    where = all_of(
        [FALSE if empty else None]
        + [equals(FILTERS[name], value) for name, value in params.items() if value]
    )
    return EventQuery(
        where=where,
        start=None if empty else start,
        end=None if empty else end,
        sort=Sort.DESC if desc else Sort.ASC,
        order_by=field,
        limit=count,
        offset=page * count,
    )


@router.get("", response_model=dict[str, Any])
async def list_audit_events(
    tenant: ReadTenant,
    events: EventsDep,
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
    params = {
        "user_id": user_id,
        "group_id": group_id,
        "target_kind": target_kind,
        "target_id": target_id,
        "action_key": action_key,
    }
    query = list_query(params, from_, to, order, page, count)
    found = [record(e) for e in await events.aselect(tenant, query)]
    total = await events.acount(tenant, query)
    return json_response({"audit_events": found, "total": total, "page": page})


async def _distinct(events: EventService, tenant: str, field: Path, query: EventQuery) -> list[str]:
    """Every distinct string of ``field`` among the matches: asks for more until the answer
    is shorter than what was asked for, so no value is ever left out."""
    limit = _FIRST_DISTINCT
    while True:
        found = await events.adistinct(tenant, field, query, limit)
        if len(found) < limit:
            return sorted(v for v, _ in found if type(v) is str)
        limit *= 4


async def filters_of(events: EventService, tenant: str) -> list[dict[str, Any]]:
    """Every target kind of the tenant's records, with the action keys seen on it."""
    listed = EventQuery(where=all_of([shows(_KIND), shows(_ACTION)]))
    out = []
    for kind in await _distinct(events, tenant, _KIND, listed):
        of_kind = EventQuery(where=all_of([equals(_KIND, kind), shows(_ACTION)]))
        actions = await _distinct(events, tenant, _ACTION, of_kind)
        out.append({"name": kind, "action_keys": actions})
    return out


@router.get("/filters", response_model=dict[str, Any])
async def list_filters(tenant: ReadTenant, events: EventsDep) -> Response:
    """Every target kind in the tenant's records with the action keys seen on it."""
    return json_response({"target_kinds": await filters_of(events, tenant)})


@router.get("/{audit_id}", response_model=dict[str, Any])
def get_audit_event(audit_id: str, tenant: ReadTenant, events: EventsDep) -> Response:
    """One audit record by id."""
    return json_response(record(events.get(tenant, audit_id)))

"""Routes for writing and reading events: ``/v1/events``."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from trailkeep.query.filters import Sort
from trailkeep.service.events import EventService
from trailkeep.storage.base import Appended

from ..body import body_schema, json_body, off_loop_if_large
from ..deps import EventsDep, ReadTenant, WriteTenant
from ..ingest_body import event_content, event_contents
from ..metrics import Metrics
from ..params import KNOWN_PARAMS_ONLY, SelectionDep
from ..schemas import (
    BatchIn,
    BatchOut,
    BatchRefOut,
    ErrorOut,
    EventIn,
    EventOut,
    EventPage,
    EventRef,
    FacetsOut,
)

__all__ = ["event_content", "facets_router", "record", "router"]

router = APIRouter(prefix="/v1/events", tags=["events"])
facets_router = APIRouter()

SearchParam = Annotated[
    str | None,
    Query(max_length=2000, description="Search language (docs/search.md), ANDed with filters."),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 422, 503)
}
_EVENT_BODY = body_schema(EventIn)
_BATCH_BODY = body_schema(BatchIn)

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Retry-safe key; for a batch, event i gets `<key>:<i>` unless it has its own.",
    ),
]


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


_EPOCH_TAIL = "0000-01-01T00:00:00.000000Z"


def _bucket_start(prefix: str) -> str:
    """A bucket's key (``2026-12-06T23:32``, a prefix of the times it counts) as the
    fixed-width timestamp every response promises (DESIGN §2): ``2026-12-06T23:32:00.000000Z``."""
    return prefix + _EPOCH_TAIL[len(prefix) :]


PreferHeader = Annotated[
    str | None,
    Header(
        alias="Prefer",
        description="`return=minimal` (RFC 7240): answer with each event's `id`, `seq`, `hash`"
        " and `received_at` only, not the whole stored event.",
    ),
]
_MINIMAL = "return=minimal"
_APPLIED = {"Preference-Applied": _MINIMAL}


def wants_minimal(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header (RFC 7240: comma-separated, each ``token[=value]`` with
    optional ``;`` parameters, tokens case-insensitive) asks for ``return=minimal``."""
    if not prefer:
        return False
    for preference in prefer.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
            return True
    return False


def _ref(appended: Appended) -> dict[str, Any]:
    """What a ``return=minimal`` answer says of one event (no stored content re-serialized)."""
    event = appended.event
    leaf = event.leaf_hash
    return {
        "id": event.id,
        "seq": event.seq,
        "hash": None if leaf is None else leaf.hex(),
        "received_at": event.received_at,
    }


def _wire(appended: list[Appended]) -> bytes:
    return orjson.dumps({"events": [a.event.to_wire() for a in appended]})


@router.post(
    "",
    status_code=201,
    response_model=EventOut | EventRef,
    responses=_ERRORS,
    openapi_extra=_EVENT_BODY,
)
async def create_event(
    request: Request,
    tenant: WriteTenant,
    events: EventsDep,
    idempotency_key: IdempotencyHeader = None,
    prefer: PreferHeader = None,
) -> Response:
    """Record one event; answered once it is durable."""
    body = await json_body(request)  # not declared: a large body is parsed off the loop
    contents = await off_loop_if_large(len(body), partial(event_contents, batch=False), body)
    metrics = request.app.state.metrics
    return await record(
        metrics, events, tenant, contents, len(body), idempotency_key, prefer, batch=False
    )


@router.post(
    "/batch",
    status_code=201,
    response_model=BatchOut | BatchRefOut,
    responses=_ERRORS,
    openapi_extra=_BATCH_BODY,
)
async def create_events(
    request: Request,
    tenant: WriteTenant,
    events: EventsDep,
    idempotency_key: IdempotencyHeader = None,
    prefer: PreferHeader = None,
) -> Response:
    """Record up to 1,000 events, all or nothing; a validation failure names the index."""
    body = await json_body(request)  # not declared: a large body is parsed off the loop
    contents = await off_loop_if_large(len(body), partial(event_contents, batch=True), body)
    metrics = request.app.state.metrics
    return await record(
        metrics, events, tenant, contents, len(body), idempotency_key, prefer, batch=True
    )


async def record(
    metrics: Metrics,
    events: EventService,
    tenant: str,
    contents: list[dict[str, Any]],
    size: int,
    idempotency_key: str | None,
    prefer: str | None,
    *,
    batch: bool,
) -> Response:
    """``POST /v1/events`` (one event: ``batch=False``) or ``/v1/events/batch`` once its
    credential and body (``size`` bytes) are known: ``contents`` appended, and the answer."""
    if idempotency_key:
        for i, content in enumerate(contents):
            content.setdefault(
                "idempotency_key", f"{idempotency_key}:{i}" if batch else idempotency_key
            )
    appended = await events.ingest(tenant, contents, batch=batch)
    metrics.events_ingested.inc(sum(1 for a in appended if not a.replayed))
    minimal = wants_minimal(prefer)
    if not batch:
        (one,) = appended
        headers = {"Idempotent-Replayed": "true"} if one.replayed else {}
        if minimal:
            return json_response(_ref(one), 201, {**headers, **_APPLIED})
        return json_response(one.event.to_wire(), 201, headers)
    if minimal:
        refs = orjson.dumps({"events": [_ref(a) for a in appended]})
        return Response(refs, 201, _APPLIED, media_type="application/json")
    payload = await off_loop_if_large(size, _wire, appended)
    return Response(payload, 201, media_type="application/json")


@router.get("", response_model=EventPage, responses=_ERRORS, dependencies=[KNOWN_PARAMS_ONLY])
async def list_events(
    tenant: ReadTenant,
    events: EventsDep,
    where: SelectionDep,
    sort: Annotated[Sort, Query(description="Order by timestamp, then id.")] = Sort.DESC,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="next_cursor of the previous page.")
    ] = None,
    q: SearchParam = None,
) -> Response:
    """List events, newest first by default, with stable cursor paging."""
    result = await events.alist(
        tenant,
        filters=where.filters,
        start=where.start,
        end=where.end,
        sort=sort,
        limit=limit,
        cursor=cursor,
        q=q,
    )
    return json_response(
        {"events": [e.to_wire() for e in result.events], "next_cursor": result.next_cursor}
    )


@router.get(
    "/{event_id}", response_model=EventOut, responses=_ERRORS, dependencies=[KNOWN_PARAMS_ONLY]
)
def get_event(event_id: str, tenant: ReadTenant, events: EventsDep) -> Response:
    """One event by id; one that retention pruned reads as
    `{"id", "seq", "hash", "pruned": true}` (its proof still verifies)."""
    return json_response(events.get_or_pruned(tenant, event_id).to_wire())


@facets_router.get(
    "/v1/facets",
    response_model=FacetsOut,
    responses=_ERRORS,
    tags=["events"],
    dependencies=[KNOWN_PARAMS_ONLY],
)
async def facets(
    tenant: ReadTenant,
    events: EventsDep,
    where: SelectionDep,
    q: SearchParam = None,
    top: Annotated[int, Query(ge=1, le=100, description="Values per dimension.")] = 10,
) -> Response:
    """Distinct categories, actions, outcomes, target types and actor ids with counts (top N),
    and a time histogram, for the same selection as `GET /v1/events`."""
    counts = await events.afacets(
        tenant, filters=where.filters, start=where.start, end=where.end, q=q, top=top
    )
    return json_response(
        {
            "total": counts.total,
            "facets": {
                name: [{"value": v, "count": n} for v, n in values]
                for name, values in counts.dimensions.items()
            },
            "histogram": {
                "bucket": counts.bucket,
                "buckets": [{"start": _bucket_start(b), "count": n} for b, n in counts.histogram],
            },
        }
    )

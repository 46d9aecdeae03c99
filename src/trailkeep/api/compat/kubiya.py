"""Kubiya's audit API (``kubiya-sdk`` ``client.audit``), at the root paths its client uses.

The client drops any path prefix of its base URL, so this dialect alone is served at root:
``GET /api/v1/auditing/items`` (``list``, ``search``, ``stream``, and ``describe``'s
fallback scan) and ``GET /api/v1/auditing/items/{id}`` (``describe``). Lists answer a bare
JSON array, which both the Python SDK and the Go CLI decode. Field mapping:
``docs/dialects.md``.

An item's ``timestamp`` is the event's arrival time (``received_at``), and ``filter.timestamp``
and ``sort`` read it too. The stream is the client polling the list with
``filter.timestamp.gte`` set to the newest ``timestamp`` it has seen (compared as a string):
arrival times only grow as events are committed, so that watermark never skips an event that
arrives late or is dated in the future, as the event's own time would. The event's own time is
shown as ``event_timestamp``.

Every parameter becomes a condition of the query tree (``_trees``), matched against what the
item shows, and storage answers it (offsets and all) exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response

from trailkeep.errors import InvalidInputError
from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import Compare, Contains, Node, Not, Or
from trailkeep.query.filters import EventQuery, Sort

from ..deps import EventsDep, ReadTenant
from ._common import (
    Failure,
    dialect_route,
    first_text,
    json_response,
    lower_bound,
    mapping_at,
    metadata_of,
    org_of,
    text_at,
    timestamp_of,
    upper_bound,
)
from ._trees import (
    FALSE,
    TRUE,
    Path,
    all_of,
    ascii_lower,
    contains_shown,
    equals,
    first_shown_equals,
)

__all__ = ["ITEM_KEYS", "item", "items_query", "router", "text_condition"]


def _render(failure: Failure) -> Response:
    body = {"error": failure.message, "code": failure.code}
    return json_response(body, failure.status, failure.headers or None)


router = APIRouter(
    prefix="/api/v1/auditing", tags=["dialect: Kubiya"], route_class=dialect_route(_render)
)

#: ``filter`` keys that name one stored field: Kubiya name → field path.
_DIRECT: Final[dict[str, Path]] = {
    "category_type": ("category",),
    "resource_type": ("target", "type"),
    "action_type": ("action",),
}
_KNOWN_KEYS: Final = (*_DIRECT, "category_name", "session_id", "timestamp")
_ARRIVAL: Final[Path] = ("received_at",)
_CATEGORY_NAME: Final[tuple[Path, ...]] = (("metadata", "category_name"), ("actor", "name"))
_SESSION: Final[tuple[Path, ...]] = (("session_id",), ("metadata", "extra", "session_id"))
_RESOURCE_TEXT: Final[tuple[Path, ...]] = (("target", "name"), ("target", "id"))
#: Strings an item shows that ``search_text`` reads, each one stored field.
_SEARCHED: Final[tuple[Path, ...]] = (
    ("id",),
    ("actor", "email"),
    ("category",),
    ("target", "type"),
    ("action",),
    ("session_id",),
    ("message",),
    ("metadata", "category_name"),
    ("metadata", "scope"),
    ("metadata", "org_id"),
    ("metadata", "error_message"),
    ("metadata", "extra", "session_id"),
    ("metadata", "extra", "message"),
    ("metadata", "extra", "content"),
    ("metadata", "extra", "text"),
)
#: The keys every item has, in order (the SDK's text filter matches them too).
ITEM_KEYS: Final = (
    "id",
    "org",
    "email",
    "version",
    "category_type",
    "category_name",
    "resource_type",
    "resource_text",
    "action_type",
    "action_successful",
    "timestamp",
    "event_timestamp",
    "extra",
    "scope",
    "metadata",
)


def item(event: StoredEvent) -> dict[str, Any]:
    """An event as a Kubiya audit item: the Go CLI's ``AuditItem`` fields (never null), plus
    ``id``, ``event_timestamp``, ``session_id``, ``message`` and the event's ``metadata``."""
    c = event.content
    metadata = metadata_of(event)
    session = text_at(c, "session_id")
    extra = dict(mapping_at(c, "metadata", "extra") or {})
    if session:
        extra["session_id"] = session
    version = metadata.get("version")
    name = first_text(text_at(c, "metadata", "category_name"), text_at(c, "actor", "name"))
    resource = first_text(text_at(c, "target", "name"), text_at(c, "target", "id"))
    out: dict[str, Any] = {
        "id": event.id,
        "org": org_of(event),
        "email": text_at(c, "actor", "email") or "",
        "version": version if type(version) is int else 0,
        "category_type": text_at(c, "category") or "",
        "category_name": name or "",
        "resource_type": text_at(c, "target", "type") or "",
        "resource_text": resource or "",
        "action_type": text_at(c, "action") or "",
        "action_successful": c.get("outcome") == "success",
        "timestamp": event.received_at,
        "event_timestamp": timestamp_of(event),
        "extra": extra,
        "scope": text_at(c, "metadata", "scope") or "",
    }
    if session:
        out["session_id"] = session
    message = text_at(c, "message")
    if message:
        out["message"] = message
    out["metadata"] = metadata
    return out


@dataclass(frozen=True, slots=True)
class _Filter:
    """The ``filter`` parameter: field conditions, and the arrival-time bounds."""

    conditions: tuple[Node, ...]
    start: str | None
    end: str | None


def _json_param(raw: str, param: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInputError(f"{param}: not valid JSON: {raw[:60]!r}") from None


def _string(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise InvalidInputError(f"{where}: expected a string, got {json.dumps(value)[:60]}")
    return value


def _time_range(value: Any) -> tuple[str | None, str | None]:
    """``{"gte", "gt", "lte", "lt"}`` → inclusive start and exclusive end."""
    if value is None:
        return None, None
    if type(value) is not dict or set(value) - {"gte", "gt", "lte", "lt"}:
        raise InvalidInputError("filter.timestamp: expected an object with any of gte, gt, lte, lt")
    starts = [
        lower_bound(
            _string(value.get(k), f"filter.timestamp.{k}"),
            f"filter.timestamp.{k}",
            exclusive=k == "gt",
        )
        for k in ("gte", "gt")
    ]
    ends = [
        upper_bound(
            _string(value.get(k), f"filter.timestamp.{k}"),
            f"filter.timestamp.{k}",
            inclusive=k == "lte",
        )
        for k in ("lte", "lt")
    ]
    start = max((s for s in starts if s is not None), default=None)
    end = min((e for e in ends if e is not None), default=None)
    return start, end


def _parse_filter(raw: str | None) -> _Filter:
    """The ``filter`` parameter: a JSON object (Python or Go spelling; its text is not matched)."""
    if raw is None or not raw.strip():
        return _Filter((), None, None)
    data = _json_param(raw, "filter")
    if type(data) is not dict:
        raise InvalidInputError("filter: expected a JSON object")
    unknown = sorted(set(data) - set(_KNOWN_KEYS))
    if unknown:
        raise InvalidInputError(f"filter: unknown keys {unknown}; known: {list(_KNOWN_KEYS)}")
    conditions: list[Node] = []
    for key, path in _DIRECT.items():
        value = _string(data.get(key), f"filter.{key}")
        if value is not None:
            conditions.append(equals(path, value))
    name = _string(data.get("category_name"), "filter.category_name")
    if name is not None:
        conditions.append(first_shown_equals(_CATEGORY_NAME, name))
    session = _string(data.get("session_id"), "filter.session_id")
    if session is not None:
        # ``extra.session_id`` shows the native session id, else the writer's own extra's.
        conditions.append(first_shown_equals(_SESSION, session))
    start, end = _time_range(data.get("timestamp"))
    return _Filter(tuple(conditions), start, end)


def _parse_sort(raw: str | None) -> Sort:
    """The ``sort`` parameter: ``{"timestamp": -1}`` (newest first, the default) or ``1``."""
    if raw is None or not raw.strip():
        return Sort.DESC
    data = _json_param(raw, "sort")
    if type(data) is dict and set(data) <= {"timestamp"} and data.get("timestamp", -1) in (-1, 1):
        return Sort.ASC if data.get("timestamp") == 1 else Sort.DESC
    raise InvalidInputError('sort: expected {"timestamp": -1} or {"timestamp": 1}')


def _arrival(start: str | None, end: str | None) -> Node | None:
    """Bounds on the arrival time an item shows as its ``timestamp``."""
    if start is not None and end is not None and start >= end:
        return FALSE
    return all_of(
        [
            None if start is None else Compare(_ARRIVAL, ">=", start),
            None if end is None else Compare(_ARRIVAL, "<", end),
        ]
    )


def text_condition(text: str, tenant: str) -> Node:
    """``search_text``: an ASCII case-insensitive substring of a string the item shows.

    The strings are the item's text fields, its ``extra`` text, the ``metadata`` keys this
    dialect maps, and ``action_successful`` as the SDK writes it (``true``/``false``). Text
    that is part of an item key (``"categ"``) is in every item, as the SDK's own client-side
    check (a substring of the item's JSON) finds it there too. Times and ``version`` are not
    searched.
    """
    needle = ascii_lower(text)
    if any(needle in key for key in ITEM_KEYS):
        return TRUE
    succeeded = equals(("outcome",), "success")
    branches: list[Node] = [
        Contains(_SEARCHED, text),
        contains_shown((("metadata", "org_id"),), text, fallback=tenant),
        contains_shown(_CATEGORY_NAME, text),
        contains_shown(_RESOURCE_TEXT, text),
    ]
    if needle in "true":
        branches.append(succeeded)
    if needle in "false":
        branches.append(Not(succeeded))
    return Or(tuple(branches))


def _status(status: str | None) -> Node | None:
    """``status_filter``: ``action_successful`` is true (``success``) or false (``failed``)."""
    if status is None:
        return None
    succeeded = equals(("outcome",), "success")
    return succeeded if status == "success" else Not(succeeded)


def items_query(
    tenant: str,
    filter_: str | None,
    sort: str | None,
    page: int,
    page_size: int,
    search_text: str | None = None,
    status_filter: str | None = None,
) -> EventQuery:
    """The page of events a list request selects, as one query for storage."""
    parsed = _parse_filter(filter_)
    where = all_of(
        [
            *parsed.conditions,
            _arrival(parsed.start, parsed.end),
            text_condition(search_text, tenant) if search_text else None,
            _status(status_filter),
        ]
    )
    # Log order is arrival order: the server stamps ``received_at`` as it sequences events.
    return EventQuery(
        where=where,
        sort=_parse_sort(sort),
        limit=page_size,
        offset=(page - 1) * page_size,
        by_seq=True,
    )


@router.get("/items", response_model=list[dict[str, Any]])
async def list_items(
    tenant: ReadTenant,
    events: EventsDep,
    filter_: Annotated[
        str | None,
        Query(
            alias="filter",
            max_length=8192,
            description="JSON: category_type, category_name, resource_type, action_type,"
            " session_id, timestamp {gte, gt, lte, lt}.",
        ),
    ] = None,
    sort: Annotated[str | None, Query(max_length=256, description='{"timestamp": -1|1}')] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    search_text: Annotated[str | None, Query(max_length=512)] = None,
    status_filter: Annotated[Literal["success", "failed"] | None, Query()] = None,
) -> Response:
    """Audit items, newest first by default; ``list``, ``search`` and ``stream`` of the SDK."""
    query = items_query(tenant, filter_, sort, page, page_size, search_text, status_filter)
    return json_response([item(e) for e in await events.aselect(tenant, query)])


@router.get("/items/{audit_id}", response_model=dict[str, Any])
def describe_item(audit_id: str, tenant: ReadTenant, events: EventsDep) -> Response:
    """One audit item by id (``describe``)."""
    return json_response(item(events.get(tenant, audit_id)))

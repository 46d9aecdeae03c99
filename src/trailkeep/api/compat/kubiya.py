"""Kubiya's audit API (``kubiya-sdk`` ``client.audit``), at the root paths its client uses.

The client drops any path prefix of its base URL, so this dialect alone is served at root:
``GET /api/v1/auditing/items`` (``list``, ``search``, ``stream``, and ``describe``'s
fallback scan) and ``GET /api/v1/auditing/items/{id}`` (``describe``). Lists answer a bare
JSON array, which both the Python SDK and the Go CLI decode. Field mapping:
``docs/dialects.md``.

The stream is the client polling the list with ``filter.timestamp.gte`` set to the newest
``timestamp`` it has seen, compared as a string: timestamps are emitted fixed-width (DESIGN
§2) and read back verbatim, and their microseconds keep its dedupe key
(``timestamp-category_type-category_name-action_type``) unique in practice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response

from trailkeep.errors import InvalidInputError
from trailkeep.model.event import StoredEvent
from trailkeep.query.filters import Sort
from trailkeep.service.dialects import DialectQuery

from ..deps import EventsDep, ReadTenant
from ._common import (
    Failure,
    ReaderDep,
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

__all__ = ["item", "router"]


def _render(failure: Failure) -> Response:
    body = {"error": failure.message, "code": failure.code}
    return json_response(body, failure.status, failure.headers or None)


router = APIRouter(
    prefix="/api/v1/auditing", tags=["dialect: Kubiya"], route_class=dialect_route(_render)
)

#: ``filter`` keys answered by a native column: Kubiya name → native filter name.
_PUSHED: Final = {
    "category_type": "category",
    "resource_type": "target.type",
    "action_type": "action",
    "session_id": "session_id",
}
_KNOWN_KEYS: Final = (*_PUSHED, "category_name", "timestamp")
_STATUS_OUTCOMES: Final = {"success": ["success"], "failed": ["failure", "unknown"]}


def item(event: StoredEvent) -> dict[str, Any]:
    """An event as a Kubiya audit item: the Go CLI's ``AuditItem`` fields (never null), plus
    ``id``, ``session_id``, ``message`` and the event's ``metadata``."""
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
        "timestamp": timestamp_of(event),
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
    pushed: dict[str, list[str]]
    category_name: str | None
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
        return _Filter({}, None, None, None)
    data = _json_param(raw, "filter")
    if type(data) is not dict:
        raise InvalidInputError("filter: expected a JSON object")
    unknown = sorted(set(data) - set(_KNOWN_KEYS))
    if unknown:
        raise InvalidInputError(f"filter: unknown keys {unknown}; known: {list(_KNOWN_KEYS)}")
    pushed = {}
    for key, name in _PUSHED.items():
        value = _string(data.get(key), f"filter.{key}")
        if value is not None:
            pushed[name] = [value]
    category_name = _string(data.get("category_name"), "filter.category_name")
    start, end = _time_range(data.get("timestamp"))
    return _Filter(pushed, category_name, start, end)


def _parse_sort(raw: str | None) -> Sort:
    """The ``sort`` parameter: ``{"timestamp": -1}`` (newest first, the default) or ``1``."""
    if raw is None or not raw.strip():
        return Sort.DESC
    data = _json_param(raw, "sort")
    if type(data) is dict and set(data) <= {"timestamp"} and data.get("timestamp", -1) in (-1, 1):
        return Sort.ASC if data.get("timestamp") == 1 else Sort.DESC
    raise InvalidInputError('sort: expected {"timestamp": -1} or {"timestamp": 1}')


def _matcher(category_name: str | None, text: str | None) -> Callable[[StoredEvent], bool] | None:
    """The conditions no column answers, checked on the item as the client will see it.

    Text is matched exactly as the SDK's own client-side filter does (a case-insensitive
    substring of the item's ``json.dumps``), so the server is never stricter than the client.
    Not a ``q`` query: the search language matches words and whole values, not substrings
    of a projected item, so pushing the text down would find fewer items than the SDK keeps.
    """
    if category_name is None and not text:
        return None
    needle = text.lower() if text else None

    def where(event: StoredEvent) -> bool:
        shown = item(event)
        if category_name is not None and shown["category_name"] != category_name:
            return False
        return needle is None or needle in json.dumps(shown, default=str).lower()

    return where


@router.get("/items", response_model=list[dict[str, Any]])
def list_items(
    tenant: ReadTenant,
    reader: ReaderDep,
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
    parsed = _parse_filter(filter_)
    filters = dict(parsed.pushed)
    if status_filter is not None:
        filters["outcome"] = _STATUS_OUTCOMES[status_filter]
    selection = DialectQuery(
        filters,
        parsed.start,
        parsed.end,
        _parse_sort(sort),
        _matcher(parsed.category_name, search_text),
    )
    window = reader.window(tenant, selection, offset=(page - 1) * page_size, limit=page_size)
    return json_response([item(e) for e in window.events])


@router.get("/items/{audit_id}", response_model=dict[str, Any])
def describe_item(audit_id: str, tenant: ReadTenant, events: EventsDep) -> Response:
    """One audit item by id (``describe``)."""
    return json_response(item(events.get(tenant, audit_id)))

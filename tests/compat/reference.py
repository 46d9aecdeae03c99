"""Brute-force references for the vendor dialects: each vendor's documented semantics applied in
plain Python to every event of a tenant, on the records as the vendor's client sees them.

A dialect's answer must equal its reference: the same records, in the same order, the same
totals. The references read only the projected records (``item``, ``entry``, ``record``,
``audit_record``, ``auth_record``), never the query trees, so they check the trees rather
than restate them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from trailkeep.api.compat import agilicus, axonflow, kubiya, wasabi
from trailkeep.api.compat._trees import ascii_lower
from trailkeep.model.event import StoredEvent
from trailkeep.model.timeparse import format_time, parse_time

__all__ = [
    "Page",
    "agilicus_audits",
    "agilicus_auth",
    "axonflow_search",
    "kubiya_items",
    "wasabi_filters",
    "wasabi_list",
]


@dataclass(frozen=True)
class Page:
    """One answer: the records (in order) and the number of matches."""

    records: list[dict[str, Any]]
    total: int


def _time(value: str) -> str:
    parsed = parse_time(value, param="t")
    assert parsed is not None
    return format_time(parsed)


def _next_tick(value: str) -> str:
    parsed = parse_time(value, param="t")
    assert parsed is not None
    return format_time(parsed + timedelta(microseconds=1))


def _window(records: list[dict[str, Any]], offset: int, limit: int) -> Page:
    return Page(records[offset : offset + limit], len(records))


# -- Kubiya -----------------------------------------------------------------------------------

_KUBIYA_SHOWN_METADATA = (
    ("category_name",),
    ("scope",),
    ("org_id",),
    ("error_message",),
    ("extra", "session_id"),
    ("extra", "message"),
    ("extra", "content"),
    ("extra", "text"),
)
_KUBIYA_SHOWN = (
    "id",
    "org",
    "email",
    "category_type",
    "category_name",
    "resource_type",
    "resource_text",
    "action_type",
    "scope",
    "session_id",
    "message",
)


def _at(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _kubiya_text(shown: dict[str, Any], text: str) -> bool:
    """The SDK's client-side text check, on the strings the dialect documents as searched."""
    needle = ascii_lower(text)
    if any(needle in key for key in kubiya.ITEM_KEYS):
        return True
    strings = [shown.get(k) for k in _KUBIYA_SHOWN]
    strings += [_at(shown["metadata"], p) for p in _KUBIYA_SHOWN_METADATA]
    strings.append(shown["extra"].get("session_id"))
    strings.append("true" if shown["action_successful"] else "false")
    return any(isinstance(s, str) and needle in ascii_lower(s) for s in strings)


def kubiya_items(
    events: Sequence[StoredEvent],
    filter_: Mapping[str, Any],
    *,
    ascending: bool = False,
    page: int = 1,
    page_size: int = 50,
    text: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """What ``list``/``search`` answer: items matching every filter key, in arrival (log)
    order."""
    out = []
    for event in sorted(events, key=lambda e: e.seq, reverse=not ascending):
        shown = kubiya.item(event)
        if any(
            filter_.get(key) and shown[key] != filter_[key]
            for key in ("category_type", "category_name", "resource_type", "action_type")
        ):
            continue
        if filter_.get("session_id") and shown["extra"].get("session_id") != filter_["session_id"]:
            continue
        bounds = filter_.get("timestamp") or {}
        if "gte" in bounds and shown["timestamp"] < _time(bounds["gte"]):
            continue
        if "lte" in bounds and shown["timestamp"] > _time(bounds["lte"]):
            continue
        if text and not _kubiya_text(shown, text):
            continue
        if status and shown["action_successful"] is not (status == "success"):
            continue
        out.append(shown)
    arrivals = [i["timestamp"] for i in out]
    assert arrivals == sorted(arrivals, reverse=not ascending), "log order is arrival order"
    return out[(page - 1) * page_size : page * page_size]


# -- AxonFlow ---------------------------------------------------------------------------------


def _policies(entry: dict[str, Any]) -> set[str]:
    metadata = entry["metadata"]
    names = {metadata.get("policy_name")}
    for values in (
        entry["policy_details"].get("matched_policies"),
        metadata.get("policies_applied"),
    ):
        if isinstance(values, list):
            names.update(values)
    return {n for n in names if isinstance(n, str)}


def axonflow_search(events: Sequence[StoredEvent], body: Mapping[str, Any]) -> Page:
    """What ``search_audit_logs`` answers: newest first, ``total`` counting every match."""
    out = []
    for event in events:
        shown = axonflow.entry(event)
        if any(
            body.get(key) and shown.get(field) != body[key]
            for key, field in (
                ("user_email", "user_email"),
                ("client_id", "client_id"),
                ("action", "request_type"),
                ("request_type", "request_type"),
                ("decision_id", "decision_id"),
                ("override_id", "override_id"),
            )
        ):
            continue
        if body.get("policy_name") and body["policy_name"] not in _policies(shown):
            continue
        if body.get("start_time") and shown["timestamp"] < _time(body["start_time"]):
            continue
        if body.get("end_time") and shown["timestamp"] >= _next_tick(body["end_time"]):
            continue
        out.append(shown)
    out.sort(key=lambda e: (e["timestamp"], e["id"]), reverse=True)
    return _window(out, body.get("offset", 0), body.get("limit", 100))


# -- Wasabi -----------------------------------------------------------------------------------


def _group(event: StoredEvent) -> str | None:
    value = (event.content.get("metadata") or {}).get("group_id")
    return value if isinstance(value, str) else None


def wasabi_list(
    events: Sequence[StoredEvent],
    params: Mapping[str, str],
    *,
    order: str = "ctime",
    page: int = 0,
    count: int = 20,
) -> Page:
    """What the list answers: records matching every filter, ordered by ``order``."""
    desc = order.startswith("-")
    field = order.removeprefix("-")
    keyed = []
    for event in events:
        shown = wasabi.record(event)
        group = _group(event)
        if params.get("group_id") and group != params["group_id"]:
            continue
        if any(
            params.get(k) and shown[k] != params[k]
            for k in ("user_id", "target_kind", "target_id", "action_key")
        ):
            continue
        if params.get("from") and shown["time"] <= _time(params["from"]):
            continue
        if params.get("to") and shown["time"] >= _time(params["to"]):
            continue
        first = "" if field == "ctime" else (group or "") if field == "group_id" else shown[field]
        keyed.append(((first, shown["time"], shown["id"]), shown))
    keyed.sort(key=lambda k: k[0], reverse=desc)
    return _window([r for _, r in keyed], page * count, count)


def wasabi_filters(events: Sequence[StoredEvent]) -> list[dict[str, Any]]:
    """Every target kind with the action keys seen on it, sorted."""
    kinds: dict[str, set[str]] = {}
    for event in events:
        shown = wasabi.record(event)
        if shown["target_kind"] and shown["action_key"]:
            kinds.setdefault(shown["target_kind"], set()).add(shown["action_key"])
    return [{"name": k, "action_keys": sorted(v)} for k, v in sorted(kinds.items())]


# -- Agilicus ---------------------------------------------------------------------------------


def _agilicus(
    events: Sequence[StoredEvent],
    project: Any,
    params: Mapping[str, str],
    keep: Any,
    dt_from: str | None,
    dt_to: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    out = []
    newest_first = sorted(events, key=lambda e: (e.content["timestamp"], e.id), reverse=True)
    for event in newest_first:
        shown = project(event)
        if any(v and shown.get(k) != v for k, v in params.items()):
            continue
        if dt_from and shown["time"] < _time(dt_from):
            continue
        if dt_to and shown["time"] >= _time(dt_to):
            continue
        if keep(event, shown):
            out.append(shown)
    return out[:limit]


def agilicus_audits(
    events: Sequence[StoredEvent],
    params: Mapping[str, str],
    attributes: Mapping[str, str] | None = None,
    lists: Mapping[str, list[str]] | None = None,
    connector: str | None = None,
    *,
    dt_from: str | None = None,
    dt_to: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """What ``list_audits`` answers: records whose shown fields equal the parameters."""
    exact = {k: v for k, v in (attributes or {}).items() if v}
    choices = {k: v for k, v in (lists or {}).items() if v}

    def keep(event: StoredEvent, shown: dict[str, Any]) -> bool:
        metadata = event.content.get("metadata") or {}
        if connector and metadata.get("connector_id") != connector:
            return False
        if not exact and not choices:
            return True
        return any(
            all(a.get(k) == v for k, v in exact.items())
            and all(a.get(k) in v for k, v in choices.items())
            for a in shown.get("audit_attributes", [])
        )

    return _agilicus(events, agilicus.audit_record, params, keep, dt_from, dt_to, limit)


def agilicus_auth(
    events: Sequence[StoredEvent],
    params: Mapping[str, str],
    *,
    dt_from: str | None = None,
    dt_to: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """What ``list_auth_records`` answers (``session_id`` reads the ``session`` field)."""
    shown_params = {("session" if k == "session_id" else k): v for k, v in params.items()}
    return _agilicus(
        events, agilicus.auth_record, shown_params, lambda *_: True, dt_from, dt_to, limit
    )

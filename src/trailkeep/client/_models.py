"""What the SDK returns and accepts: pages, checkpoints, exports, and keyword filters."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypedDict

from trailkeep.model.event import OBJECT_FIELDS
from trailkeep.model.timeparse import format_time

from .errors import InvalidArgumentError

__all__ = [
    "FILTER_NAMES",
    "Event",
    "EventList",
    "ExportFormat",
    "ExportInfo",
    "Filters",
    "Page",
    "SignedCheckpoint",
    "Sort",
    "StreamCheckpoint",
    "VerifiedEvent",
    "event_body",
    "filter_params",
    "time_param",
]

#: An event in its wire form (docs/api.md): a JSON object.
Event = dict[str, Any]
#: A list of events (an alias, since the clients' ``list`` method shadows the builtin).
EventList = list[Event]
Sort = Literal["asc", "desc"]
ExportFormat = Literal["jsonl", "json", "csv", "bundle"]

#: Keyword filter → the API's filter name.
FILTER_NAMES: Final[Mapping[str, str]] = {
    "action": "action",
    "category": "category",
    "outcome": "outcome",
    "actor_id": "actor.id",
    "actor_email": "actor.email",
    "actor_type": "actor.type",
    "target_id": "target.id",
    "target_type": "target.type",
    "source_ip": "source.ip",
    "client_id": "client_id",
    "session_id": "session_id",
    "request_id": "request_id",
    "trace_id": "trace_id",
}

Values = str | Sequence[str]
Time = str | datetime


class Filters(TypedDict, total=False):
    """Keyword filters of every read: a value or a list of values (any matches) per field,
    and a time range (``start`` inclusive, ``end`` exclusive; any form the server accepts,
    such as ``"now-1h"``, or a datetime — naive ones are UTC)."""

    action: Values
    category: Values
    outcome: Values
    actor_id: Values
    actor_email: Values
    actor_type: Values
    target_id: Values
    target_type: Values
    source_ip: Values
    client_id: Values
    session_id: Values
    request_id: Values
    trace_id: Values
    start: Time
    end: Time


def time_param(value: Time) -> str:
    if isinstance(value, datetime):
        return format_time(value if value.tzinfo else value.replace(tzinfo=UTC))
    return value


def _values(value: Values) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def filter_values(filters: Mapping[str, Any]) -> dict[str, list[str] | str]:
    """Keyword filters → ``{"actor.id": [...], "start": "..."}``; a TypeError names a typo."""
    out: dict[str, list[str] | str] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if key in ("start", "end"):
            out[key] = time_param(value)
        elif key in FILTER_NAMES:
            out[FILTER_NAMES[key]] = _values(value)
        else:
            known = ", ".join([*FILTER_NAMES, "start", "end"])
            raise TypeError(f"unknown filter {key!r}; the filters are: {known}")
    return out


def filter_params(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Keyword filters as query parameters, a list repeated once per value."""
    params: list[tuple[str, str]] = []
    for name, value in filter_values(filters).items():
        params.extend((name, v) for v in ([value] if isinstance(value, str) else value))
    return params


def event_body(event: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """An event to send, from a mapping and/or keywords.

    ``actor_id="u-1"`` is ``actor={"id": "u-1"}`` (likewise ``target_*`` and ``source_*``);
    a datetime ``timestamp`` is written in RFC 3339; ``None`` values are left out.
    """
    body: dict[str, Any] = {k: v for k, v in (event or {}).items() if v is not None}
    for key, value in fields.items():
        if value is None:
            continue
        parent, _, child = key.partition("_")
        if child in OBJECT_FIELDS.get(parent, ()):
            body[parent] = {**body.get(parent, {}), child: value}
        else:
            body[key] = value
    if isinstance(body.get("timestamp"), datetime):
        body["timestamp"] = time_param(body["timestamp"])
    if not body.get("action"):
        raise InvalidArgumentError("an audit event needs an action (e.g. log(action='user.login'))")
    return body


@dataclass(frozen=True, slots=True)
class Page:
    """One page of events and the cursor to the next (None on the last page)."""

    events: list[Event]
    next_cursor: str | None

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint note and what it says.

    Attributes:
        note: the C2SP signed note, as the server sent it.
        verified: whether its signature was checked against a pinned or given key.
    """

    note: str
    origin: str
    size: int
    root_hash: bytes
    verified: bool

    @property
    def root_hash_b64(self) -> str:
        return base64.b64encode(self.root_hash).decode()


@dataclass(frozen=True, slots=True)
class StreamCheckpoint:
    """A checkpoint announced by the live stream: every event with ``seq < size`` that the
    stream's filters match has already been delivered (docs/api.md, "Live stream")."""

    checkpoint: SignedCheckpoint
    position: int

    @property
    def size(self) -> int:
        return self.checkpoint.size


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """An event proven to be leaf ``event["seq"]`` of the log at ``checkpoint``."""

    event: Event
    checkpoint: SignedCheckpoint


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """An export job (docs/api.md, "Exports").

    Attributes:
        size: the log size it snapshots: it holds matching events with ``seq < size``.
        events: how many events it holds, when known.
    """

    id: str
    status: str
    format: str
    size: int
    events: int | None
    created_at: str
    download_url: str
    filters: dict[str, list[str]] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    q: str | None = None
    #: A server-relative URL that downloads the export without a token until
    #: ``download_link_expires_at``; None from a server that issues none.
    download_link: str | None = None
    download_link_expires_at: str | None = None
    #: ``events_written``, ``events_total``, ``state``, ``downloads`` (docs/api.md).
    progress: dict[str, Any] | None = None
    seq_range: tuple[int, int] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportInfo:
        return cls(
            id=data["id"],
            status=data["status"],
            format=data["format"],
            size=data["size"],
            events=data.get("events"),
            created_at=data["created_at"],
            download_url=data["download_url"],
            filters=data.get("filters") or {},
            start=data.get("start"),
            end=data.get("end"),
            q=data.get("q"),
            download_link=data.get("download_link"),
            download_link_expires_at=data.get("download_link_expires_at"),
            progress=data.get("progress"),
            seq_range=_pair(data.get("seq_range")),
        )


def _pair(value: Any) -> tuple[int, int] | None:
    """A bundle's ``[start, end)`` as the server sends it (a two-item list), else None."""
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
        return value[0], value[1]
    return None

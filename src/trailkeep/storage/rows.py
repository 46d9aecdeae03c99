"""How events map to database rows: shared by every backend so the columns never drift."""

from __future__ import annotations

from typing import Any, Final

from trailkeep.model.commitments import SALT_SIZE, field_paths
from trailkeep.model.event import NewEvent

__all__ = [
    "DERIVED_COLUMNS",
    "EVENT_COLUMNS",
    "QUERY_COLUMNS",
    "event_row",
    "filter_values",
    "pack_salts",
    "unpack_salts",
]

EVENT_COLUMNS: Final = (
    "tenant_id",
    "seq",
    "id",
    "received_at",
    "ts",
    "action",
    "category",
    "outcome",
    "actor_id",
    "actor_email",
    "actor_type",
    "target_id",
    "target_type",
    "source_ip",
    "client_id",
    "session_id",
    "request_id",
    "trace_id",
    "idempotency_key",
    "body",
    "salts",
)


def _text(value: Any) -> str | None:
    """A filter column's value: strings only, so an erased field's marker reads as NULL."""
    return value if type(value) is str else None


def _sub(content: dict[str, Any], obj: str, key: str) -> str | None:
    value = content.get(obj)
    return _text(value.get(key)) if type(value) is dict else None


#: Columns computed from an event's content, rewritten when a redaction changes it.
DERIVED_COLUMNS: Final = EVENT_COLUMNS[4:21]
#: The columns queries filter, sort and count on: ``filter_values`` of the content.
QUERY_COLUMNS: Final = EVENT_COLUMNS[4:19]
_NO_SALT = bytes(SALT_SIZE)


def pack_salts(salts: dict[str, bytes]) -> bytes | None:
    """Salts in sorted field-path order, 16 bytes each; the paths come back from the body.

    An erased field's salt is passed (and packed) as zeros, so positions stay aligned.
    """
    if not salts:
        return None
    order = sorted(salts)
    if list(salts) == order:  # drawn in path order: the hot path
        return b"".join(salts.values())
    return b"".join(salts[path] for path in order)


def unpack_salts(content: dict[str, Any], packed: bytes | None) -> dict[str, bytes]:
    """The inverse of ``pack_salts``: path → salt, leaving out redacted (zeroed) ones."""
    if not packed:
        return {}
    paths = sorted(field_paths(content))
    out = {}
    for i, path in enumerate(paths):
        salt = packed[i * SALT_SIZE : (i + 1) * SALT_SIZE]
        if salt != _NO_SALT:
            out[path] = salt
    return out


def filter_values(content: dict[str, Any]) -> tuple[str | None, ...]:
    """The values of ``QUERY_COLUMNS`` for an event's content, in order.

    The one definition of what answers a filter: the writer stores these, a redaction
    rewrites them, and ``trailkeep verify database`` recomputes them to find a changed column.
    """
    c = content
    return (
        c.get("timestamp"),
        c.get("action"),
        _text(c.get("category")),
        c.get("outcome", "unknown"),
        _sub(c, "actor", "id"),
        _sub(c, "actor", "email"),
        _sub(c, "actor", "type"),
        _sub(c, "target", "id"),
        _sub(c, "target", "type"),
        _sub(c, "source", "ip"),
        _sub(c, "source", "client_id"),
        _text(c.get("session_id")),
        _text(c.get("request_id")),
        _text(c.get("trace_id")),
        _text(c.get("idempotency_key")),
    )


def event_row(tenant_id: str, seq: int, event: NewEvent) -> tuple[Any, ...]:
    """The values for ``EVENT_COLUMNS``, in order (the leaf hash lives in the tree tables)."""
    return (
        tenant_id,
        seq,
        event.id,
        event.received_at,
        *filter_values(event.content),
        event.body,
        pack_salts(event.salts),
    )

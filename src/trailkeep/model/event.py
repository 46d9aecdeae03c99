"""The audit event as the domain sees it: what a client sends, and what the log stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "CORRELATION_FIELDS",
    "OBJECT_FIELDS",
    "OUTCOMES",
    "SERVER_FIELDS",
    "NewEvent",
    "StoredEvent",
]

#: Fields only the server sets; a client that sends one is told so.
SERVER_FIELDS: Final = ("id", "tenant_id", "seq", "received_at", "hash")
#: Objects whose first-level keys are committed one by one (DESIGN §3).
OBJECT_FIELDS: Final = {
    "actor": ("id", "type", "name", "email", "role"),
    "target": ("id", "type", "name", "org_id"),
    "source": ("ip", "user_agent", "client_id", "service"),
}
CORRELATION_FIELDS: Final = ("session_id", "request_id", "trace_id")
OUTCOMES: Final = ("success", "failure", "unknown")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An accepted, normalized event waiting to be sequenced into a tenant's log.

    Everything but ``seq`` is decided before the event reaches the writer, so the expensive
    work (JSON encoding, salts, commitments) happens outside the sequencing lock.

    Attributes:
        id: the server-assigned ``evt_`` id.
        received_at: when the server accepted the request (fixed-width RFC 3339).
        content: the client's fields, nulls dropped, ``timestamp`` normalized.
        body: ``content`` encoded once, as stored.
        salts: per-field-path salts, empty when integrity is off.
        commitments: per-field-path commitments, empty when integrity is off.
        leaf_prefix: the leaf input up to its ``seq`` (``commitments.leaf_prefix``), so the
            writer only appends the position; None when integrity is off or it does not apply.
        pangea_leaf: the event's leaf in Pangea's tree (``model.pangea``), computed before
            the writer takes it; None lets the writer compute it.
    """

    id: str
    received_at: str
    content: dict[str, Any]
    body: bytes
    salts: dict[str, bytes]
    commitments: dict[str, bytes]
    leaf_prefix: bytes | None = None
    pangea_leaf: bytes | None = None

    @property
    def timestamp(self) -> str:
        ts: str = self.content["timestamp"]
        return ts

    @property
    def idempotency_key(self) -> str | None:
        key: str | None = self.content.get("idempotency_key")
        return key


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event in a tenant's log, as read back from storage."""

    tenant_id: str
    seq: int
    id: str
    received_at: str
    content: dict[str, Any]
    leaf_hash: bytes | None

    def to_wire(self) -> dict[str, Any]:
        """The native API's JSON form (DESIGN §2): server fields first, then the client's."""
        wire: dict[str, Any] = {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "seq": self.seq,
            "received_at": self.received_at,
        }
        wire.update(self.content)
        if self.leaf_hash is not None:
            wire["hash"] = self.leaf_hash.hex()
        return wire

    @classmethod
    def from_row(
        cls,
        tenant_id: str,
        seq: int,
        event_id: str,
        received_at: str,
        body: bytes,
        leaf_hash: bytes | None,
    ) -> StoredEvent:
        return cls(tenant_id, seq, event_id, received_at, orjson.loads(body), leaf_hash)

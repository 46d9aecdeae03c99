"""Field erasure (GDPR): remove values and salts, keep commitments, log the erasure itself."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from trailkeep.errors import ConflictError, IntegrityError, NotFoundError, ValidationFailedError
from trailkeep.model.commitments import REDACTED, commitment, field_paths, unflatten
from trailkeep.model.event import StoredEvent
from trailkeep.model.evidence import event_leaf_hash
from trailkeep.service.events import ERASURE_ACTION, Limits, is_erasure_record, prepare_event
from trailkeep.storage.base import Evidence, Store

__all__ = ["NOT_REDACTABLE", "RedactionService", "is_erasure_record"]

#: Fields that locate an event rather than describe a person; erasing them would leave an
#: event nobody can find or order, so they stay.
NOT_REDACTABLE: Final = frozenset({"timestamp", "action", "outcome"})


def expand_paths(requested: Sequence[str], values: dict[str, Any]) -> list[str]:
    """Field paths to erase: ``actor`` stands for every ``actor.*`` path present."""
    out: list[str] = []
    for path in requested:
        if path in NOT_REDACTABLE:
            raise ValidationFailedError(f"{path} cannot be redacted; it locates the event")
        matched = [p for p in values if p == path or p.startswith(path + ".")]
        if not matched:
            raise ValidationFailedError(f"event has no field {path!r} to redact")
        out.extend(p for p in matched if p not in out)
    return out


class RedactionService:
    def __init__(self, store: Store, limits: Limits) -> None:
        self._store = store
        self._limits = limits

    async def redact(
        self, tenant_id: str, event_id: str, fields: Sequence[str], actor_id: str, reason: str = ""
    ) -> StoredEvent:
        """Erase ``fields`` of an event; returns the event as it now reads.

        The stored leaf must still match before anything is erased, so an erasure can never
        hide earlier tampering.
        """
        evidence = self._store.get_evidence(tenant_id, event_id)
        if evidence is None:
            if self._store.get_pruned(tenant_id, event_id) is not None:
                raise ConflictError(
                    f"event {event_id} was pruned by the tenant's retention policy: its content"
                    " is already gone, so there is nothing left to redact"
                )
            raise NotFoundError(f"no event {event_id!r} in this tenant")
        event = evidence.event
        if is_erasure_record(event.content):  # the only trace of an erasure stays whole
            raise ConflictError(
                f"event {event_id} is the record of an erasure ({ERASURE_ACTION});"
                " erasure records cannot be erased"
            )
        values = field_paths(event.content)
        paths = expand_paths(fields, values)
        stored_leaf = event.leaf_hash
        if stored_leaf is not None and stored_leaf != event_leaf_hash(
            event.to_wire(), evidence.salts, evidence.redacted
        ):
            raise IntegrityError(f"event {event_id} does not match its leaf; not redacting")
        salts = dict(evidence.salts)
        redacted = dict(evidence.redacted)
        for path in paths:
            salt = salts.pop(path, None)
            if salt is None:
                continue  # already erased
            redacted[path] = commitment(salt, values[path])
            values[path] = dict(REDACTED)
        content = unflatten(values)
        erased = Evidence(
            StoredEvent(
                tenant_id, event.seq, event.id, event.received_at, content, event.leaf_hash
            ),
            salts,
            redacted,
        )
        audit = prepare_event(
            {
                "action": ERASURE_ACTION,
                "category": "system",
                "outcome": "success",
                "actor": {"id": actor_id, "type": "api_key"},
                "target": {"id": event_id, "type": "event"},
                "message": reason or f"erased {', '.join(paths)}",
                "metadata": {"fields": paths},
            },
            self._limits,
        )
        await asyncio.wrap_future(self._store.redact(tenant_id, event_id, erased, audit))
        return erased.event

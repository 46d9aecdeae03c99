"""Whole-tenant dumps: every event with its salts, up to a signed checkpoint, as JSON lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import orjson

from trailkeep.errors import NotFoundError
from trailkeep.model.evidence import encode_redacted, encode_salts
from trailkeep.storage.base import Evidence, PrunedEvent, Store, StoredCheckpoint

__all__ = ["DUMP_FORMAT", "dump_lines", "evidence_record", "range_records"]

#: Equal to ``trailkeep.client.verify.DUMP_FORMAT``; a test pins both (layers forbid the import).
DUMP_FORMAT: Final = "trailkeep-dump/v1"
_CHUNK = 5000


def evidence_record(evidence: Evidence) -> dict[str, Any]:
    return {
        "event": evidence.event.to_wire(),
        "salts": encode_salts(evidence.salts),
        "redacted": encode_redacted(evidence.redacted),
    }


def dump_lines(
    store: Store,
    tenant_id: str,
    checkpoint: StoredCheckpoint | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The dump of a tenant up to ``checkpoint`` (default: its latest), one line at a time.

    An event retention pruned is the line ``{"id", "seq", "hash", "pruned": true}``: its leaf,
    so a verifier still rebuilds the checkpoint's root, and no content.
    """
    checkpoint = checkpoint or store.latest_checkpoint(tenant_id)
    if checkpoint is None:
        raise NotFoundError(f"tenant {tenant_id!r} has no signed checkpoint yet")
    header = {"format": DUMP_FORMAT, "tenant_id": tenant_id, "checkpoint": checkpoint.note}
    yield orjson.dumps(header) + b"\n"
    for start in range(0, checkpoint.size, _CHUNK):
        records = range_records(store, tenant_id, start, min(start + _CHUNK, checkpoint.size))
        for record in records:
            yield orjson.dumps(record) + b"\n"
        if progress is not None:
            progress(len(records))


def range_records(store: Store, tenant_id: str, start: int, end: int) -> list[dict[str, Any]]:
    """The dump records of ``seq`` in ``[start, end)`` in order: each event's evidence, or the
    pruned record of an event retention pruned (read only when some seq has no event row)."""
    chunk = store.scan_evidence(tenant_id, start, end)
    if len(chunk) == end - start:
        return [evidence_record(e) for e in chunk]
    return _merged(chunk, store.scan_pruned(tenant_id, start, end))


def _merged(chunk: list[Evidence], pruned: list[PrunedEvent]) -> list[dict[str, Any]]:
    records = [(e.event.seq, evidence_record(e)) for e in chunk]
    records.extend((p.seq, p.to_wire()) for p in pruned)
    records.sort(key=lambda r: r[0])
    return [record for _, record in records]

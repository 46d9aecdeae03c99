"""Whole-tenant dumps: every event with its salts, up to a signed checkpoint, as JSON lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import orjson

from trailkeep.errors import NotFoundError
from trailkeep.model.evidence import encode_redacted, encode_salts
from trailkeep.storage.base import Evidence, Store, StoredCheckpoint

__all__ = ["DUMP_FORMAT", "dump_lines", "evidence_record"]

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
    """The dump of a tenant up to ``checkpoint`` (default: its latest), one line at a time."""
    checkpoint = checkpoint or store.latest_checkpoint(tenant_id)
    if checkpoint is None:
        raise NotFoundError(f"tenant {tenant_id!r} has no signed checkpoint yet")
    header = {"format": DUMP_FORMAT, "tenant_id": tenant_id, "checkpoint": checkpoint.note}
    yield orjson.dumps(header) + b"\n"
    for start in range(0, checkpoint.size, _CHUNK):
        chunk = store.scan_evidence(tenant_id, start, min(start + _CHUNK, checkpoint.size))
        for evidence in chunk:
            yield orjson.dumps(evidence_record(evidence)) + b"\n"
        if progress is not None:
            progress(len(chunk))

"""Offline verification: an event and its receipt, two checkpoints, a whole-tenant dump.

Nothing here trusts the server or talks to it: every check recomputes commitments, leaves and
roots from the data and a public key the caller pinned. ``trailkeep verify`` and the SDK use
these functions; failures raise ``IntegrityError`` subclasses that name the event or field.

    IntegrityError
    ├── FieldMismatchError       (model.evidence) a field, salt or commitment that does not fit
    ├── LeafMismatchError        an event whose recomputed leaf is not the one proven or stored
    ├── SequenceError            a dump with a missing, duplicated or reordered event
    ├── NoteError, ProofError    (merkle) a bad signature, a proof that does not verify
    └── DumpFormatError          a dump that is not a trailkeep dump
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from trailkeep.errors import IntegrityError
from trailkeep.merkle import (
    RFC9162,
    Checkpoint,
    CompactRange,
    Verifier,
    open_checkpoint,
    parse_tlog_proof,
    verify_consistency,
    verify_inclusion,
)
from trailkeep.model.evidence import (
    FieldMismatchError,
    decode_redacted,
    decode_salts,
    event_leaf_hash,
)

__all__ = [
    "DUMP_FORMAT",
    "DumpFormatError",
    "DumpReport",
    "FieldMismatchError",
    "LeafMismatchError",
    "SequenceError",
    "verify_checkpoints",
    "verify_dump",
    "verify_event",
]

DUMP_FORMAT: Final = "trailkeep-dump/v1"


class LeafMismatchError(IntegrityError):
    """An event's recomputed leaf hash differs from the one it claims or is proven by."""

    def __init__(self, event_id: str, seq: Any, message: str) -> None:
        super().__init__(f"event {event_id} (seq {seq}): {message}")
        self.event_id = event_id
        self.seq = seq


class SequenceError(IntegrityError):
    """A dump whose events are not exactly seq 0, 1, 2, ... up to the checkpoint size."""


class DumpFormatError(IntegrityError):
    """The input is not a trailkeep dump."""


def _verifier(public_key: str | Verifier) -> Verifier:
    return public_key if isinstance(public_key, Verifier) else Verifier.parse(public_key.strip())


def _origin(checkpoint: Checkpoint, tenant_id: str) -> None:
    if not checkpoint.origin.endswith("/" + tenant_id):
        raise IntegrityError(
            f"checkpoint origin {checkpoint.origin!r} is not the log of tenant {tenant_id!r}"
        )


def _leaf(event: Mapping[str, Any], salts: Mapping[str, str], redacted: Mapping[str, str]) -> bytes:
    try:
        return event_leaf_hash(event, decode_salts(salts), decode_redacted(redacted))
    except FieldMismatchError as exc:
        raise FieldMismatchError(
            exc.path, f"event {event.get('id')} (seq {event.get('seq')}): {exc.message}"
        ) from None


def verify_event(
    evidence: Mapping[str, Any], public_key: str | Verifier, receipt: str | None = None
) -> Checkpoint:
    """Prove one event is in its tenant's log, from ``GET /v1/events/{id}/proof``'s answer.

    Args:
        evidence: the proof endpoint's JSON: ``event``, ``salts``, ``redacted``, and (unless
            ``receipt`` is given) ``hashes`` and ``checkpoint``.
        public_key: the log's verifier key string (``GET /v1/log/key``), pinned beforehand.
        receipt: a C2SP ``tlog-proof`` for the event, used instead of the JSON proof.

    Returns:
        The verified checkpoint the event is included in.
    """
    verifier = _verifier(public_key)
    event = evidence["event"]
    leaf = _leaf(event, evidence.get("salts", {}), evidence.get("redacted", {}))
    if "hash" in event and event["hash"] != leaf.hex():
        raise LeafMismatchError(event["id"], event["seq"], "content does not match its hash")
    if receipt is not None:
        proof = parse_tlog_proof(receipt)
        note, index, hashes = proof.checkpoint, proof.index, list(proof.hashes)
    else:
        note, index = evidence["checkpoint"], evidence["leaf_index"]
        hashes = [_b64(h) for h in evidence["hashes"]]
    if index != event["seq"]:
        raise LeafMismatchError(event["id"], event["seq"], f"proof is for leaf index {index}")
    checkpoint = open_checkpoint(note, verifier)
    _origin(checkpoint, event["tenant_id"])
    verify_inclusion(RFC9162, index, checkpoint.size, leaf, hashes, checkpoint.root_hash)
    return checkpoint


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError(f"proof element {value!r} is not base64") from None


def verify_checkpoints(
    old_note: str, new_note: str, proof: Iterable[str | bytes], public_key: str | Verifier
) -> tuple[Checkpoint, Checkpoint]:
    """Prove the newer checkpoint extends the older one (RFC 9162 consistency).

    Args:
        proof: the consistency proof from old size to new size (base64 strings or bytes).
    """
    verifier = _verifier(public_key)
    old = open_checkpoint(old_note, verifier)
    new = open_checkpoint(new_note, verifier, origin=old.origin)
    hashes = [h if isinstance(h, bytes) else _b64(h) for h in proof]
    verify_consistency(RFC9162, old.size, new.size, hashes, old.root_hash, new.root_hash)
    return old, new


@dataclass(frozen=True, slots=True)
class DumpReport:
    tenant_id: str
    checkpoint: Checkpoint
    events: int
    redacted_fields: int


def verify_dump(lines: Iterable[bytes | str], public_key: str | Verifier) -> DumpReport:
    """Recompute every commitment, leaf and the root of a whole-tenant dump.

    A dump is JSON lines: a header ``{"format", "tenant_id", "checkpoint"}`` then one
    ``{"event", "salts", "redacted"}`` per event, in ``seq`` order, exactly the checkpoint's
    size of them (``trailkeep dump`` and the export API write it).

    Raises:
        FieldMismatchError, LeafMismatchError, SequenceError: naming the first bad event.
        RootMismatchError: every event fits but the root is not the checkpoint's.
    """
    it = iter(lines)
    header = _json(next(it, None), 1)
    if header.get("format") != DUMP_FORMAT:
        raise DumpFormatError(f"line 1 is not a {DUMP_FORMAT} header")
    tenant_id = header.get("tenant_id")
    checkpoint = open_checkpoint(header.get("checkpoint", ""), _verifier(public_key))
    _origin(checkpoint, str(tenant_id))
    compact = CompactRange(RFC9162)
    redacted_fields = 0
    for line_no, line in enumerate(it, start=2):
        record = _json(line, line_no)
        event = record.get("event") or {}
        seq = compact.size
        if event.get("seq") != seq or event.get("tenant_id") != tenant_id:
            raise SequenceError(
                f"line {line_no}: expected seq {seq} of tenant {tenant_id}, found event"
                f" {event.get('id')} with seq {event.get('seq')} of {event.get('tenant_id')}"
                " (an event is missing, duplicated or out of order)"
            )
        leaf = _leaf(event, record.get("salts", {}), record.get("redacted", {}))
        if event.get("hash") != leaf.hex():
            raise LeafMismatchError(event.get("id", "?"), seq, "content does not match its hash")
        redacted_fields += len(record.get("redacted", {}))
        compact.append(leaf)
    if compact.size != checkpoint.size:
        raise SequenceError(
            f"dump has {compact.size} events but its checkpoint covers {checkpoint.size}"
        )
    if compact.root() != checkpoint.root_hash:
        raise IntegrityError("events recompute to another root than the checkpoint's")
    return DumpReport(str(tenant_id), checkpoint, compact.size, redacted_fields)


def _json(line: bytes | str | None, line_no: int) -> dict[str, Any]:
    if line is None:
        raise DumpFormatError("the dump is empty")
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise DumpFormatError(f"line {line_no} is not JSON") from None
    if not isinstance(value, dict):
        raise DumpFormatError(f"line {line_no} is not a JSON object")
    return value

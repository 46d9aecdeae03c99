"""Offline verification: an event and its receipt, two checkpoints, a whole-tenant dump.

Nothing here trusts the server or talks to it: every check recomputes commitments, leaves and
roots from the data and a public key the caller pinned. ``trailkeep verify`` and the SDK use
these functions; failures raise ``IntegrityError`` subclasses that name the event or field.

    IntegrityError
    ├── FieldMismatchError       (model.evidence) a field, salt or commitment that does not fit
    ├── LeafMismatchError        an event whose recomputed leaf is not the one proven or stored
    ├── SequenceError            a dump with a missing, duplicated or reordered event
    ├── NoteError, ProofError    (merkle) a bad signature, a proof that does not verify
    └── DumpFormatError          a file that is not a trailkeep dump (or bundle, BundleFormatError)
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, Final, TypeAlias

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
    LeafRecomputer,
    decode_redacted,
    decode_salts,
    event_leaf_hash,
)

__all__ = [
    "DUMP_FORMAT",
    "DumpFormatError",
    "DumpProgress",
    "DumpReport",
    "FieldMismatchError",
    "LeafMismatchError",
    "SequenceError",
    "verify_checkpoints",
    "verify_dump",
    "verify_event",
]

DUMP_FORMAT: Final = "trailkeep-dump/v1"
#: The formats of files that are not dumps, named so ``verify_dump`` can say what to do.
_EXPORT_FORMAT: Final = "trailkeep-export/v1"
_BUNDLE_FORMAT: Final = "trailkeep-bundle/v1"


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
    pruned = event.get("pruned") is True
    if pruned:  # retention kept only the leaf: it is proven, no content is left to check
        leaf = _pruned_leaf(event)
    else:
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
    if not pruned:
        _origin(checkpoint, event["tenant_id"])
    verify_inclusion(RFC9162, index, checkpoint.size, leaf, hashes, checkpoint.root_hash)
    return checkpoint


def _pruned_leaf(event: Mapping[str, Any]) -> bytes:
    leaf = event.get("hash")
    try:
        if not isinstance(leaf, str) or len(leaf) != 64:
            raise ValueError
        return bytes.fromhex(leaf)
    except ValueError:
        raise LeafMismatchError(
            event.get("id", "?"), event.get("seq"), "a pruned event needs its 64-hex-digit hash"
        ) from None


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
    #: Events retention pruned: their leaves count toward the root, their content is gone.
    pruned: int = 0


#: ``progress(events_verified, events_in_the_checkpoint)``, called every thousand events or so.
DumpProgress: TypeAlias = Callable[[int, int], None]

_READ_SIZE: Final = 1 << 20  # bytes read at a time from a dump file
_BATCH: Final = 1024  # lines taken at a time from any other iterable


def verify_dump(
    lines: Iterable[bytes | str], public_key: str | Verifier, progress: DumpProgress | None = None
) -> DumpReport:
    """Recompute every commitment, leaf and the root of a whole-tenant dump.

    A dump is JSON lines: a header ``{"format", "tenant_id", "checkpoint"}`` then one
    ``{"event", "salts", "redacted"}`` per event, in ``seq`` order, exactly the checkpoint's
    size of them (``trailkeep dump`` and the export API write it). An event retention pruned
    is ``{"id", "seq", "hash", "pruned": true}``: its leaf hash is taken as given, since no
    content is left to recompute it from. A binary file is read a megabyte at a time; any
    other iterable of lines, line by line.

    Each event goes through ``LeafRecomputer`` (the common case, in about half the time) and,
    if that does not vouch for it, through the exact path, which either verifies it (a
    redacted event, say) or raises naming the event and field.

    Raises:
        FieldMismatchError, LeafMismatchError, SequenceError: naming the first bad event.
        DumpFormatError: the input is not a trailkeep dump.
        IntegrityError: every event fits but the root is not the checkpoint's.
    """
    batches = _line_batches(lines)
    first = next(batches, None)
    header = _json(first[0] if first else None, 1)
    if header.get("format") != DUMP_FORMAT:
        raise DumpFormatError(_not_a_dump(header.get("format")))
    tenant_id = header.get("tenant_id")
    checkpoint = open_checkpoint(header.get("checkpoint", ""), _verifier(public_key))
    _origin(checkpoint, str(tenant_id))
    events = _DumpEvents(tenant_id)
    compact = CompactRange(RFC9162)
    for batch in chain([first[1:]] if first else [], batches):
        compact.absorb(events.leaves(batch))
        if progress is not None:
            progress(events.count, checkpoint.size)
    if events.count != checkpoint.size:
        raise SequenceError(
            f"dump has {events.count} events but its checkpoint covers {checkpoint.size}"
        )
    if compact.root() != checkpoint.root_hash:
        raise IntegrityError("events recompute to another root than the checkpoint's")
    return DumpReport(
        str(tenant_id), checkpoint, events.count, events.redacted_fields, events.pruned
    )


def _not_a_dump(fmt: Any) -> str:
    if fmt == _EXPORT_FORMAT:
        return (
            "this is a filtered export: it holds a selection, so no root can be rebuilt from"
            " it; export with --format bundle to get a file that `trailkeep verify bundle`"
            " proves complete"
        )
    if fmt == _BUNDLE_FORMAT:
        return "this is a bundle: check it with `trailkeep verify bundle`"
    return f"line 1 is not a {DUMP_FORMAT} header"


class _DumpEvents:
    """The event lines of one dump, in order: each one checked, its leaf hash returned."""

    __slots__ = ("_fast", "count", "pruned", "redacted_fields", "tenant_id")

    def __init__(self, tenant_id: Any) -> None:
        self.tenant_id = tenant_id
        self.count = 0  # events verified so far: the next one's seq
        self.redacted_fields = 0
        self.pruned = 0
        self._fast = LeafRecomputer(tenant_id).verified_leaf

    def leaves(self, lines: Sequence[bytes | str]) -> list[bytes]:
        """The leaf hashes of the next ``lines``; raises at the first event that fails."""
        fast, loads = self._fast, orjson.loads
        seq = self.count
        leaves: list[bytes] = []
        append = leaves.append
        for line in lines:
            try:  # the common case; anything else is for the exact path to judge and name
                record = loads(line)
                event = record["event"]
                leaf = (
                    fast(event, record["salts"])  # checks the tenant too
                    if event["seq"] == seq and record["redacted"] == _NO_REDACTIONS
                    else None
                )
            except (LookupError, TypeError, ValueError):
                leaf = None
            append(leaf or self._exact(line, seq))
            seq += 1
        self.count = seq
        return leaves

    def _exact(self, line: bytes | str, seq: int) -> bytes:
        line_no = seq + 2
        record = _json(line, line_no)
        if record.get("pruned") is True:
            return self._pruned(record, seq, line_no)
        event = record.get("event")
        if not isinstance(event, dict):
            event = {}
        if event.get("seq") != seq or event.get("tenant_id") != self.tenant_id:
            raise SequenceError(
                f"line {line_no}: expected seq {seq} of tenant {self.tenant_id}, found event"
                f" {event.get('id')} with seq {event.get('seq')} of {event.get('tenant_id')}"
                " (an event is missing, duplicated or out of order)"
            )
        salts = _object(record, "salts", line_no)
        redacted = _object(record, "redacted", line_no)
        leaf = _leaf(event, salts, redacted)
        if event.get("hash") != leaf.hex():
            raise LeafMismatchError(event.get("id", "?"), seq, "content does not match its hash")
        self.redacted_fields += len(redacted)
        return leaf

    def _pruned(self, record: Mapping[str, Any], seq: int, line_no: int) -> bytes:
        """A pruned event's line: in its place, with a well-formed leaf hash."""
        if record.get("seq") != seq:
            raise SequenceError(
                f"line {line_no}: expected seq {seq}, found pruned event {record.get('id')}"
                f" with seq {record.get('seq')} (an event is missing, duplicated or out of order)"
            )
        leaf = record.get("hash")
        if not isinstance(leaf, str) or len(leaf) != 64:
            raise DumpFormatError(f"line {line_no}: a pruned event needs its 64-hex-digit hash")
        try:
            value = bytes.fromhex(leaf)
        except ValueError:
            raise DumpFormatError(f"line {line_no}: hash {leaf!r} is not hex") from None
        self.pruned += 1
        return value


_NO_REDACTIONS: Final[Mapping[str, Any]] = {}


def _line_batches(lines: Iterable[bytes | str]) -> Iterator[Sequence[bytes | str]]:
    """``lines`` a batch at a time; a binary file in big reads, split at newlines."""
    if isinstance(lines, io.BufferedIOBase | io.RawIOBase):
        yield from _file_batches(lines)
        return
    it = iter(lines)
    while batch := list(islice(it, _BATCH)):
        yield batch


def _file_batches(file: io.BufferedIOBase | io.RawIOBase) -> Iterator[list[bytes]]:
    rest = b""
    while chunk := file.read(_READ_SIZE):
        batch = chunk.split(b"\n")
        if rest:
            batch[0] = rest + batch[0]
        rest = batch.pop()  # the start of a line that the next read ends
        if batch:
            yield batch
    if rest:
        yield [rest]


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


def _object(record: Mapping[str, Any], name: str, line_no: int) -> dict[str, Any]:
    value = record.get(name, {})
    if not isinstance(value, dict):
        raise DumpFormatError(f"line {line_no}: {name!r} is not an object")
    return value

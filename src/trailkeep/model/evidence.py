"""Recomputing an event's leaf hash from what a reader holds: the event, its salts, and the
commitments of its redacted fields. The server, the SDK and ``trailkeep verify`` all use this.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from trailkeep.errors import IntegrityError, ValidationFailedError
from trailkeep.model.commitments import (
    commit_all,
    field_paths,
    is_redacted,
    leaf_hash,
    leaf_input,
)

__all__ = [
    "FieldMismatchError",
    "decode_redacted",
    "decode_salts",
    "encode_redacted",
    "encode_salts",
    "event_commitments",
    "event_leaf_hash",
]


class FieldMismatchError(IntegrityError):
    """An event's fields, salts and redaction commitments do not fit together.

    Attributes:
        path: the field path at fault.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def event_commitments(
    content: Mapping[str, Any], salts: Mapping[str, bytes], redacted: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Every field's commitment, as a verifier rebuilds it.

    A field with a salt is recomputed from its value; a field without one must hold the
    redaction marker and have its commitment in ``redacted``.

    Raises:
        FieldMismatchError: naming the first field that does not fit.
    """
    values = field_paths(content)
    for path in salts.keys() - values.keys():
        raise FieldMismatchError(path, "a salt but no value (the field was removed)")
    for path in redacted.keys() - values.keys():
        raise FieldMismatchError(path, "a redaction commitment but no redacted field")
    erased = values.keys() - salts.keys()
    for path in erased:
        if not (is_redacted(values[path]) and path in redacted):
            raise FieldMismatchError(path, "no salt and no redaction commitment")
    salted = {p: v for p, v in values.items() if p not in erased} if erased else values
    try:
        out = commit_all(salted, salts)
    except ValidationFailedError as exc:
        raise FieldMismatchError(exc.message.partition(":")[0], exc.message) from None
    for path in erased:
        out[path] = redacted[path]
    return out


def event_leaf_hash(
    event: Mapping[str, Any], salts: Mapping[str, bytes], redacted: Mapping[str, bytes]
) -> bytes:
    """The RFC 9162 leaf hash of a stored event in its wire form (DESIGN §3)."""
    try:
        tenant_id, seq = event["tenant_id"], event["seq"]
        event_id, received_at = event["id"], event["received_at"]
    except KeyError as exc:
        raise FieldMismatchError(str(exc.args[0]), "server field missing") from None
    commitments = event_commitments(event, salts, redacted)
    try:
        return leaf_hash(leaf_input(tenant_id, seq, event_id, received_at, commitments))
    except ValidationFailedError as exc:
        raise IntegrityError(f"event {event_id}: {exc.message}") from None


def encode_salts(salts: Mapping[str, bytes]) -> dict[str, str]:
    return {p: base64.b64encode(s).decode() for p, s in sorted(salts.items())}


def encode_redacted(redacted: Mapping[str, bytes]) -> dict[str, str]:
    return {p: c.hex() for p, c in sorted(redacted.items())}


def decode_salts(salts: Mapping[str, str]) -> dict[str, bytes]:
    """Salts from their wire form (base64 by path); ``IntegrityError`` if malformed."""
    try:
        return {p: binascii.a2b_base64(s, strict_mode=True) for p, s in salts.items()}
    except (binascii.Error, ValueError, TypeError) as exc:
        raise IntegrityError(f"salts are not base64: {exc}") from None


def decode_redacted(redacted: Mapping[str, str]) -> dict[str, bytes]:
    """Redaction commitments from their wire form (hex by path)."""
    try:
        return {p: bytes.fromhex(c) for p, c in redacted.items()}
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"redaction commitments are not hex: {exc}") from None

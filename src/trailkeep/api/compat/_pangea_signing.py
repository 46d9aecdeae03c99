"""The ``timestamp`` a client signed (``shared/compat/pangea.md`` §6.3).

The SDK sends a ``datetime`` timestamp as pydantic renders it (``...05Z``, ``...05+02:00``)
but signs ``format_datetime`` of it (always six fraction digits, ``Z`` for UTC). Stored as
sent, such a signature would fail; normalized always, a caller's preformatted string would.
So the timestamp is normalized only when the event is signed, the signature fails over the
event as sent, and passes over the normalized one: every case of §6.3 then verifies.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from trailkeep.model.pangea import canonical_json

__all__ = ["as_signed"]


def _key(public_key: str) -> Ed25519PublicKey | None:
    """The Ed25519 key of a ``public_key`` field (JSON with a PEM ``key``, or a PEM)."""
    text = public_key
    try:
        info = json.loads(public_key)
        if isinstance(info, dict) and isinstance(info.get("key"), str):
            text = info["key"]
    except ValueError:
        pass
    if not text.startswith("-----"):
        return None
    try:
        key = load_pem_public_key(text.encode())
    except ValueError:
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


def _verifies(key: Ed25519PublicKey, signature: bytes, event: dict[str, Any]) -> bool:
    try:
        key.verify(signature, canonical_json(event))
    except InvalidSignature:
        return False
    return True


def _normalized(stamp: str) -> str | None:
    """``format_datetime`` of the timestamp (a naive one taken as UTC), or None."""
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat(timespec="microseconds").replace("+00:00", "Z")


def as_signed(
    event: dict[str, Any], signature: str | None, public_key: str | None
) -> dict[str, Any]:
    """The event with its ``timestamp`` in the form its signature covers (see above)."""
    stamp = event.get("timestamp")
    if signature is None or public_key is None or not isinstance(stamp, str):
        return event
    normalized = _normalized(stamp)
    if normalized is None or normalized == stamp:
        return event
    key = _key(public_key)
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return event
    if key is None or _verifies(key, raw, event):
        return event
    candidate = {**event, "timestamp": normalized}
    return candidate if _verifies(key, raw, candidate) else event

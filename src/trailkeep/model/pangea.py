"""The Pangea envelope of any stored event, and the leaf of Pangea's tree it hashes to.

Pangea's SDK checks each event's ``hash`` as SHA-256 of its envelope's canonical JSON
(``shared/compat/pangea.md`` §4), and that hash is the leaf of the second tree every tenant
keeps (DESIGN §3, "Pangea's tree"). The envelope must therefore be a deterministic function of
what storage keeps of an event (its content and ``received_at``), whichever surface wrote it:

- an event written through ``/pangea`` keeps the envelope's event, signature and public key
  verbatim in ``metadata.pangea`` (``{"event": ..., "signature"?, "public_key"?}``), so a client
  signature still verifies;
- any other event is mapped field by field (:func:`native_event`; the table is in
  ``docs/dialects.md``).
"""

from __future__ import annotations

import json
from hashlib import sha256
from typing import Any, Final

import orjson

__all__ = [
    "PANGEA_METADATA_KEY",
    "canonical_json",
    "envelope",
    "envelope_hash",
    "native_event",
    "pangea_leaf",
    "pruned_leaf",
]

#: The ``metadata`` key holding what a Pangea client sent, verbatim.
PANGEA_METADATA_KEY: Final = "pangea"
#: Envelope keys kept beside ``event`` when the client sent them (``sign_local``).
_SIGNING_KEYS: Final = ("signature", "public_key")
_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
)


# Deeper values take the reference encoder: well under orjson's own limit of 255 levels.
_MAX_FAST_DEPTH: Final = 64
_I64_MIN: Final = -(2**63)
_U64_MAX: Final = 2**64 - 1


def canonical_json(value: Any) -> bytes:
    """Python-style canonical JSON, exactly as the SDK's ``hash_dict`` writes it.

    Not RFC 8785: keys sorted by code point, no whitespace, non-ASCII raw, floats as Python's
    ``repr``; the two agree on strings, ints, bools and null.

    On the ingest path (every event's Pangea leaf), so values without floats take orjson, whose
    compact key-sorted output is byte-identical to ``json`` here: both escape exactly ``"``,
    ``\\`` and U+0000..U+001F (the short forms, else ``\\u00xx`` in lowercase hex) and write
    everything else raw, and both sort keys by code point (checked for every code point and by
    a property test, ``tests/model/test_pangea.py``). Floats (Python's ``repr`` is not orjson's),
    integers beyond 64 bits, other types, deep nesting and lone surrogates take ``json``.
    """
    if _fast_ok(value, 0):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: the reference encoder raises as it always did
    return _ENCODER.encode(value).encode("utf-8")


def _fast_ok(value: Any, depth: int) -> bool:
    """Whether orjson writes ``value`` exactly as ``json`` does (see ``canonical_json``)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        fits: bool = _I64_MIN <= value <= _U64_MAX
        return fits
    if depth >= _MAX_FAST_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _fast_ok(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_fast_ok(item, depth + 1) for item in value)
    return False


def _text(value: Any) -> str | None:
    """A standard-schema field's value: strings as they are, anything else as canonical JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return canonical_json(value).decode("utf-8")


def _first_id(content: dict[str, Any], key: str, *names: str) -> str | None:
    obj = content.get(key)
    if not isinstance(obj, dict):
        return None
    for name in names:
        got = obj.get(name)
        if isinstance(got, str):
            return got
    return None


def native_event(content: dict[str, Any]) -> dict[str, str]:
    """The Pangea standard-schema event of an event that was not written through Pangea.

    ``message`` is the event's message, else its action; ``actor``, ``target`` and ``source``
    are the ids (``source.service``, else ``source.ip``); ``status`` is the outcome; ``old``
    and ``new`` are canonical JSON unless already strings. Absent fields stay absent.
    """
    fields = {
        "message": _text(content.get("message")) or _text(content.get("action")) or "",
        "action": _text(content.get("action")),
        "actor": _first_id(content, "actor", "id"),
        "target": _first_id(content, "target", "id"),
        "source": _first_id(content, "source", "service", "ip"),
        "status": _text(content.get("outcome")),
        "timestamp": _text(content.get("timestamp")),
        "old": _text(content.get("old")),
        "new": _text(content.get("new")),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _pangea_part(content: dict[str, Any]) -> dict[str, Any] | None:
    metadata = content.get("metadata")
    if not isinstance(metadata, dict):
        return None
    part = metadata.get(PANGEA_METADATA_KEY)
    if isinstance(part, dict) and isinstance(part.get("event"), dict):
        return part
    return None


def envelope(content: dict[str, Any], received_at: str) -> dict[str, Any]:
    """The envelope Pangea's SDK sees for an event: ``{event, received_at, signature?,
    public_key?}``, never with a null top-level key (the SDK drops those before hashing)."""
    part = _pangea_part(content)
    if part is None:
        return {"event": native_event(content), "received_at": received_at}
    out: dict[str, Any] = {"event": part["event"], "received_at": received_at}
    for key in _SIGNING_KEYS:
        if isinstance(part.get(key), str):
            out[key] = part[key]
    return out


def envelope_hash(env: dict[str, Any]) -> bytes:
    """SHA-256 of the envelope's canonical JSON: the event ``hash`` and Pangea leaf."""
    return sha256(canonical_json(env)).digest()


def pangea_leaf(content: dict[str, Any], received_at: str) -> bytes:
    """The leaf of Pangea's tree for an event with this content and receive time."""
    if _pangea_part(content) is None:
        # Every value of a mapped event is a string: orjson writes it as canonical_json does,
        # without looking at the values first (on the ingest path of every native event).
        env = {"event": native_event(content), "received_at": received_at}
        try:
            return sha256(orjson.dumps(env, option=orjson.OPT_SORT_KEYS)).digest()
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: canonical_json raises as it always did
    return envelope_hash(envelope(content, received_at))


def pruned_leaf(event_id: str) -> bytes:
    """The Pangea leaf of a position whose content retention deleted before the tree existed.

    Only the migration that builds Pangea's tree for existing logs needs it: the content the
    envelope would be made of is gone, so the leaf commits to the event's id alone.
    """
    return envelope_hash({"event": {"id": event_id, "message": "(pruned)"}})

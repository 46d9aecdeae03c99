"""The integrity contract of DESIGN §3: which bytes of an event are committed, and how.

Every byte this module produces ends up inside a tenant's Merkle tree, so changing any of it
breaks every stored tree. It is therefore versioned (:data:`LEAF_VERSION`) and pinned by the
golden files in ``tests/model/golden/``; a change of layout needs a new version, never an edit.

The contract, version 1:

* An event's client content is split into *field paths* (:func:`field_paths`): each top-level
  field is one path, except the objects in :data:`COMMITTED_OBJECTS`, whose first-level keys are
  one path each (``actor.email``, ``metadata.model``). That lets a single value be erased later
  (GDPR) while the event and every proof still verify.
* Each path ``p`` gets a random 16-byte salt ``s_p`` and a commitment
  ``c_p = SHA-256(s_p ‖ JCS(value_p))`` (:func:`commitment`). The salt stops anyone from
  recovering an erased low-entropy value (an email) by guessing; it is not secret from readers.
* ``leaf_input = JCS({"v": 1, "tenant_id", "seq", "id", "received_at", "commitments":
  {p: hex(c_p)}})`` and the RFC 9162 leaf hash is ``SHA-256(0x00 ‖ leaf_input)``.
* Redacting a field replaces its value with :data:`REDACTED` and deletes its salt, keeping
  ``c_p``; :func:`recommit` is how a verifier then rebuilds the commitments.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from trailkeep.errors import IntegrityError, ValidationFailedError
from trailkeep.model import _native
from trailkeep.model.canonical import MAX_SAFE_INTEGER, jcs

__all__ = [
    "COMMITTED_OBJECTS",
    "LEAF_VERSION",
    "POSITIONAL_FIELDS",
    "REDACTED",
    "SALT_SIZE",
    "commit_all",
    "commit_fields",
    "commitment",
    "field_paths",
    "is_redacted",
    "leaf_hash",
    "leaf_input",
    "leaf_input_from",
    "leaf_prefix",
    "new_salts",
    "recommit",
    "unflatten",
]

#: The layout version written into every leaf as ``"v"``.
LEAF_VERSION: Final = 1
#: Objects whose first-level keys are committed (and so can be erased) one by one.
COMMITTED_OBJECTS: Final = ("actor", "target", "source", "metadata")
#: Server fields: committed in clear in the leaf, so never among the field paths.
POSITIONAL_FIELDS: Final = frozenset({"id", "tenant_id", "seq", "received_at", "hash"})
#: Bytes of salt per field path.
SALT_SIZE: Final = 16
#: What an erased field's value becomes. Compare with :func:`is_redacted`, never ``==``.
REDACTED: Final[Mapping[str, bool]] = {"redacted": True}

_DIGEST_SIZE: Final = 32
_LEAF_PREFIX: Final = b"\x00"
_RECEIVED_AT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)
_sha256 = hashlib.sha256


def field_paths(content: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten an event's client content into ``{path: value}``, the units that are committed.

    ``None`` values (top-level or inside a committed object) are absent, not committed, and so
    is an empty committed object. A committed object that is not a ``dict`` (a dialect's
    plain-string actor) is one path, as is any other top-level field, whatever its value
    (``old``, ``new``, ``signature``...). Server fields are skipped, so the stored wire form of
    an event can be passed as is.

    Raises:
        ValidationFailedError: a key is not a string, or a top-level key holds a ``.`` (it
            would be confused with a sub-field path).
    """
    paths: dict[str, Any] = {}
    for name, value in content.items():
        if value is None or name in POSITIONAL_FIELDS:
            continue
        if type(name) is not str or "." in name:
            raise ValidationFailedError(f"field name {name!r} cannot be committed")
        if type(value) is dict and name in COMMITTED_OBJECTS:
            for key, item in value.items():
                if type(key) is not str:
                    raise ValidationFailedError(f"{name}: key {key!r} is not a string")
                if item is not None:
                    paths[f"{name}.{key}"] = item
        else:
            paths[name] = value
    return paths


def unflatten(paths: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild event content from field paths: the inverse of :func:`field_paths`.

    Only the first ``.`` of a path, and only after a committed object's name, splits it, so
    ``metadata.a.b`` is the key ``a.b`` of ``metadata``.

    Raises:
        ValidationFailedError: a path names both a whole object and one of its keys.
    """
    content: dict[str, Any] = {}
    objects: dict[str, dict[str, Any]] = {}
    for path, value in paths.items():
        name, dot, key = path.partition(".")
        if not dot or name not in COMMITTED_OBJECTS:
            if path in content:  # only a committed object's name, already rebuilt from its keys
                raise ValidationFailedError(f"field path {path!r} conflicts with its sub-fields")
            content[path] = value
            continue
        parent = objects.get(name)
        if parent is None:
            if name in content:
                raise ValidationFailedError(f"field path {path!r} conflicts with {name!r}")
            parent = objects[name] = content[name] = {}
        parent[key] = value
    return content


def new_salts(paths: Iterable[str]) -> dict[str, bytes]:
    """A fresh random salt for each field path, from one ``os.urandom`` call."""
    names = list(paths)
    return _cut(names, os.urandom(SALT_SIZE * len(names)))


def _cut(paths: list[str], pool: bytes) -> dict[str, bytes]:
    """``pool`` cut into one :data:`SALT_SIZE` salt per path, in order."""
    offsets = range(0, len(pool), SALT_SIZE)
    return {p: pool[i : i + SALT_SIZE] for p, i in zip(paths, offsets, strict=True)}


def commitment(salt: bytes, value: Any) -> bytes:
    """``SHA-256(salt ‖ JCS(value))``: one field's commitment.

    Raises:
        ValidationFailedError: the salt is not :data:`SALT_SIZE` bytes, or the value has no
            canonical JSON form.
    """
    if len(salt) != SALT_SIZE:
        raise ValidationFailedError(f"a salt is {SALT_SIZE} bytes, got {len(salt)}")
    return _sha256(salt + jcs(value)).digest()


def commit_all(values: Mapping[str, Any], salts: Mapping[str, bytes]) -> dict[str, bytes]:
    """The commitment of every field path, in the order of ``values``.

    Raises:
        ValidationFailedError: ``salts`` and ``values`` name different paths, a salt has the
            wrong size, or a value has no canonical JSON form (the message names the path).
    """
    if values.keys() != salts.keys():
        missing = sorted(values.keys() - salts.keys())
        extra = sorted(salts.keys() - values.keys())
        raise ValidationFailedError(f"salts do not match values: missing {missing}, extra {extra}")
    out: dict[str, bytes] = {}
    sha256, dumps = _sha256, orjson.dumps
    for path, value in values.items():
        salt = salts[path]
        # Hot path (every field of every event): a string or safe int under a well-sized salt.
        kind = type(value)
        if len(salt) == SALT_SIZE and (
            kind is str or (kind is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
        ):
            try:
                out[path] = sha256(salt + dumps(value)).digest()
                continue
            except orjson.JSONEncodeError:
                pass  # a lone surrogate: commitment() names the problem
        try:
            out[path] = commitment(salt, value)
        except ValidationFailedError as exc:
            raise ValidationFailedError(f"{path}: {exc.message}") from exc
    return out


def recommit(
    values: Mapping[str, Any], salts: Mapping[str, bytes], kept: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Rebuild an event's commitments as a verifier does, after any redactions.

    A path with a salt is recomputed from its value; a path without one must hold the
    :data:`REDACTED` marker and takes its commitment from ``kept``. Feeding the result to
    :func:`leaf_input` and comparing leaf hashes then proves every unredacted value without
    trusting the server: a value changed, added or dropped changes the leaf.

    Args:
        values: the event's field paths (:func:`field_paths` of the event as served).
        salts: the salts served with the event, by path.
        kept: stored commitments by path. Only those of redacted paths are read, so a server
            may send just those, or all of them.

    Raises:
        IntegrityError: a salt has no value, or a value has neither a salt nor (being
            redacted) a kept commitment.
    """
    orphans = salts.keys() - values.keys()
    if orphans:
        raise IntegrityError(f"salts without a value: {sorted(orphans)}")
    out: dict[str, bytes] = {}
    for path, value in values.items():
        salt = salts.get(path)
        if salt is not None:
            out[path] = commitment(salt, value)
        elif is_redacted(value) and path in kept:
            out[path] = kept[path]
        else:
            raise IntegrityError(f"{path}: no salt, and no kept commitment for a redacted value")
    return out


def is_redacted(value: Any) -> bool:
    """Whether ``value`` is the redaction marker (exactly ``{"redacted": true}``).

    A client could send that object itself; only a missing salt tells a real redaction apart,
    which is why :func:`recommit` looks at the salt first.
    """
    return type(value) is dict and len(value) == 1 and value.get("redacted") is True


def leaf_input(
    tenant_id: str, seq: int, event_id: str, received_at: str, commitments: Mapping[str, bytes]
) -> bytes:
    """The canonical bytes a leaf commits to: positions in clear, fields by commitment.

    Args:
        tenant_id: the tenant whose tree holds the leaf.
        seq: the leaf index in that tree.
        event_id: the event's ``evt_`` id (the ``"id"`` key).
        received_at: the server's timestamp, in the fixed ``...ffffffZ`` form.
        commitments: ``c_p`` by field path.

    Raises:
        ValidationFailedError: an id is not a string, ``seq`` is not a non-negative ``int``,
            ``received_at`` is not in the fixed form, or a commitment is not a SHA-256 digest.
    """
    if type(tenant_id) is not str or type(event_id) is not str:
        raise ValidationFailedError("tenant_id and event_id must be strings")
    if type(seq) is not int or seq < 0:
        raise ValidationFailedError(f"seq must be a non-negative int, got {seq!r}")
    if type(received_at) is not str or not _RECEIVED_AT.fullmatch(received_at):
        raise ValidationFailedError(
            f"received_at {received_at!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
        )
    hexed: dict[str, str] = {}
    for path, digest in commitments.items():
        if len(digest) != _DIGEST_SIZE:
            raise ValidationFailedError(f"{path}: a commitment is {_DIGEST_SIZE} bytes")
        hexed[path] = digest.hex()
    document = {
        "v": LEAF_VERSION,
        "tenant_id": tenant_id,
        "seq": seq,
        "id": event_id,
        "received_at": received_at,
        "commitments": hexed,
    }
    # Hot path (every event, on ingest and on verification): with ASCII paths every value here
    # is a string or a small int, which orjson writes exactly as JCS does.
    if seq <= MAX_SAFE_INTEGER and "".join(hexed).isascii():
        try:
            return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate in an id: let jcs name the problem
    return jcs(document)


def leaf_hash(leaf_input: bytes) -> bytes:
    """The RFC 9162 leaf hash, ``SHA-256(0x00 ‖ leaf_input)``."""
    return _sha256(_LEAF_PREFIX + leaf_input).digest()


# -- ingest's fast path --------------------------------------------------------------------


def commit_fields(
    values: Mapping[str, Any], pool: bytes | None = None
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Fresh salts and the commitments of every field path, both in sorted path order.

    What ingest does: :func:`new_salts` of the sorted paths followed by :func:`commit_all`
    (a property test pins that); for the common values (strings, booleans, safe integers), in
    one call to the C part where it was built.

    Args:
        values: the event's field paths (:func:`field_paths`).
        pool: :data:`SALT_SIZE` fresh random bytes per path, the salts in sorted path order,
            for a caller that draws many events' salts at once; by default drawn here.

    Raises:
        ValidationFailedError: a value has no canonical JSON form (the message names the path).
        ValueError: ``pool`` is not :data:`SALT_SIZE` bytes per path.
    """
    paths = sorted(values)
    if pool is None:
        pool = os.urandom(SALT_SIZE * len(paths))
    elif len(pool) != SALT_SIZE * len(paths):
        raise ValueError(f"a pool of {len(pool)} bytes for {len(paths)} salts")
    if _native.commit is not None:
        both = _native.commit(paths, values if type(values) is dict else dict(values), pool)
        if both is not None:
            return both
    salts = _cut(paths, pool)
    return salts, commit_all({p: values[p] for p in paths}, salts)


def leaf_prefix(event_id: str, received_at: str, commitments: Mapping[str, bytes]) -> bytes | None:
    """The leaf input up to its ``seq``: everything ingest knows before the event is sequenced.

    JCS orders the leaf's keys ``commitments, id, received_at, seq, tenant_id, v``, so the
    writer only has to append the position (:func:`leaf_input_from`). None where this fast
    path does not apply (a non-ASCII field path, whose order JCS and orjson may disagree on):
    use :func:`leaf_input` then.
    """
    if _native.prefix is not None and type(commitments) is dict:
        head = _native.prefix(commitments, event_id, received_at)
        if head is not None:
            return head  # the common case (ASCII paths in order, a plain id), in one call
    if (
        type(event_id) is not str
        or type(received_at) is not str
        or not _RECEIVED_AT.fullmatch(received_at)
    ):
        return None
    hexed: dict[str, str] = {}
    for path, digest in commitments.items():
        if len(digest) != _DIGEST_SIZE:
            return None
        hexed[path] = digest.hex()
    if not "".join(hexed).isascii():
        return None
    document = {"commitments": hexed, "id": event_id, "received_at": received_at}
    try:
        head = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None  # a lone surrogate in the id: leaf_input names the problem
    return head[:-1] + b',"seq":'


def leaf_input_from(prefix: bytes, tenant_id: str, seq: int) -> bytes:
    """:func:`leaf_input`, from :func:`leaf_prefix` and the event's place in the log."""
    if type(tenant_id) is not str:
        raise ValidationFailedError("tenant_id must be a string")
    if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
        raise ValidationFailedError(f"seq must be an int in [0, 2**53), got {seq!r}")
    try:
        tenant = orjson.dumps(tenant_id)
    except orjson.JSONEncodeError:
        raise ValidationFailedError(f"tenant_id {tenant_id!r} has no canonical form") from None
    return b'%s%d,"tenant_id":%s,"v":1}' % (prefix, seq, tenant)

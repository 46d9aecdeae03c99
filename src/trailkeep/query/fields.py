"""Which event fields a query may name, and how each is stored (DESIGN §2).

Fields with an indexed column (``filters.FILTER_COLUMNS``, plus ``id``, ``seq``, ``timestamp``
→ ``ts``, ``received_at`` and ``idempotency_key``) are matched on the column; every other field
is read from the event's JSON body. ``message`` is the full-text field. Under ``metadata``,
``old`` and ``new`` any path is allowed (the content is the client's); elsewhere a field that
the event schema does not have is an error that lists the ones it does.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from trailkeep.model.event import OBJECT_FIELDS
from trailkeep.query.filters import FILTER_COLUMNS

__all__ = [
    "FieldError",
    "FieldKind",
    "FieldSpec",
    "UnknownFieldError",
    "display_path",
    "resolve",
]


class FieldKind(enum.Enum):
    TEXT = "text"
    """A string column: exact, prefix and string-order comparisons."""
    INTEGER = "integer"
    """An integer column (``seq``): whole-number values only."""
    TIME = "time"
    """A fixed-width timestamp column: values are read with ``parse_time``."""
    JSON = "json"
    """A value in the JSON body: typed matching, arrays match on any element."""
    FULL_TEXT = "full_text"
    """``message``: ``message:word`` finds the word in it, like free text restricted to it."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where a field lives.

    Attributes:
        name: the canonical dotted name (``source.client_id`` for ``client_id``).
        kind: how values are matched.
        column: the events column, for column kinds.
        path: the keys inside the JSON body, for ``JSON`` (and ``FULL_TEXT``, whose ``field:*``
            test reads the body).
    """

    name: str
    kind: FieldKind
    column: str | None = None
    path: tuple[str, ...] = ()


class FieldError(ValueError):
    """A field the query language cannot search; the message says why."""


class UnknownFieldError(FieldError):
    """A name that is no field of an event (it may be text that merely contains a ``:``)."""


_SIGNATURE_FIELDS: Final = ("alg", "public_key", "sig")
_OBJECTS: Final[Mapping[str, tuple[str, ...]]] = {**OBJECT_FIELDS, "signature": _SIGNATURE_FIELDS}
_OPEN_ROOTS: Final = ("metadata", "old", "new")


def _build() -> dict[str, FieldSpec]:
    specs = {
        "id": FieldSpec("id", FieldKind.TEXT, "id"),
        "seq": FieldSpec("seq", FieldKind.INTEGER, "seq"),
        "timestamp": FieldSpec("timestamp", FieldKind.TIME, "ts"),
        "received_at": FieldSpec("received_at", FieldKind.TIME, "received_at"),
        "idempotency_key": FieldSpec("idempotency_key", FieldKind.TEXT, "idempotency_key"),
        "message": FieldSpec("message", FieldKind.FULL_TEXT, path=("message",)),
    }
    for obj, subs in _OBJECTS.items():
        for sub in subs:
            name = f"{obj}.{sub}"
            specs[name] = FieldSpec(name, FieldKind.JSON, path=(obj, sub))
    for name, column in FILTER_COLUMNS.items():
        specs[name] = FieldSpec(name, FieldKind.TEXT, column)
    # ``client_id`` is the filter API's short name for the source's client id.
    specs["source.client_id"] = FieldSpec("source.client_id", FieldKind.TEXT, "client_id")
    specs["client_id"] = specs["source.client_id"]
    return specs


_FIELDS: Final = _build()
_KNOWN: Final = (
    "id, seq, timestamp, received_at, action, category, outcome, message, actor.*, target.*,"
    " source.*, client_id, session_id, request_id, trace_id, idempotency_key, signature.*,"
    " metadata.<key>, old, new"
)
_BARE_SEGMENT: Final = re.compile(r"[\w-]+")
_UNSEARCHABLE_KEY: Final = re.compile(r'["\\\x00-\x1f\x7f]')


def display_path(path: tuple[str, ...]) -> str:
    """A path as a query would write it: ``metadata."user agent".os``."""
    out = [path[0]]
    for segment in path[1:]:
        if _BARE_SEGMENT.fullmatch(segment):
            out.append(segment)
        else:
            out.append('"' + segment.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return ".".join(out)


def resolve(path: tuple[str, ...]) -> FieldSpec:
    """The spec of the field at ``path``.

    Raises:
        FieldError: the field is unknown, names a whole object, or has a key no backend can
            address (empty, or containing ``"``, ``\\`` or a control character).
    """
    root, name = path[0], display_path(path)
    if root in _OPEN_ROOTS:
        if root == "metadata" and len(path) == 1:
            raise FieldError("'metadata' is an object: name a key, as in metadata.model")
        _check_keys(path)
        return FieldSpec(name, FieldKind.JSON, path=path)
    spec = _FIELDS.get(".".join(path)) if all(_BARE_SEGMENT.fullmatch(s) for s in path) else None
    if spec is not None:
        return spec
    if root in _OBJECTS:
        subs = ", ".join(f"{root}.{sub}" for sub in _OBJECTS[root])
        if len(path) == 1:
            raise FieldError(f"'{root}' is an object: name one of its fields ({subs})")
        raise UnknownFieldError(f"unknown field '{name}'; {root} has {subs}")
    if root in _FIELDS and len(path) > 1:
        raise UnknownFieldError(f"'{root}' has no sub-fields; known fields: {_KNOWN}")
    raise UnknownFieldError(f"unknown field '{name}'; known fields: {_KNOWN}")


def _check_keys(path: tuple[str, ...]) -> None:
    for segment in path[1:]:
        if not segment:
            raise FieldError(f"'{display_path(path)}' has an empty key")
        if _UNSEARCHABLE_KEY.search(segment):
            raise FieldError(
                f"'{display_path(path)}': keys containing '\"', '\\' or control characters"
                " cannot be searched"
            )

"""Pangea events as trailkeep events, and Pangea's search syntax as a query tree.

A Pangea event becomes an ordinary native event (readable natively and through every
dialect): ``message``, ``action``, ``actor`` (→ ``actor.id``), ``target`` (→ ``target.id``),
``source`` (→ ``source.service``), ``status`` (→ ``outcome`` when it is one of ours), ``old``,
``new`` and ``timestamp``; what the client sent is also kept verbatim in ``metadata.pangea``
(with ``signature`` and ``public_key``), which is what the envelope and its hash are made of
(``trailkeep.model.pangea``). Search compiles to ``trailkeep.query.ast`` over both homes of a
field, so native events and Pangea events are found alike, and storage does all the filtering.
"""

from __future__ import annotations

import re
from typing import Any, Final

from trailkeep.errors import InvalidInputError
from trailkeep.model.event import OUTCOMES
from trailkeep.model.pangea import PANGEA_METADATA_KEY, canonical_json
from trailkeep.model.timeparse import parse_time
from trailkeep.query.ast import Contains, Node, Not, Values

from ._pangea_wire import FieldError
from ._trees import all_of, any_of

__all__ = [
    "RESTRICTION_KEYS",
    "STANDARD_FIELDS",
    "auth0_content",
    "compile_query",
    "native_content",
    "restriction",
    "sort_path",
]

Path = tuple[str, ...]
#: The standard schema's fields (``AuditEvent``) and their native homes.
STANDARD_FIELDS: Final[dict[str, tuple[Path, ...]]] = {
    "message": (("message",),),
    "action": (("action",),),
    "actor": (("actor", "id"),),
    "target": (("target", "id"),),
    "source": (("source", "service"), ("source", "ip")),
    "status": (("outcome",),),
    "old": (("old",),),
    "new": (("new",),),
    "timestamp": (("timestamp",),),
    "tenant_id": (),
}
#: ``search_restriction`` keys the spec allows (``additionalProperties: false``).
RESTRICTION_KEYS: Final = ("actor", "action", "source", "status", "target", "tenant_id")
#: The native action of a Pangea event that names none.
DEFAULT_ACTION: Final = "pangea.log"
_MAX_LENGTHS: Final = {
    "message": 32766,
    "actor": 128,
    "action": 32,
    "new": 32766,
    "old": 32766,
    "source": 128,
    "status": 32,
    "target": 128,
    "tenant_id": 128,
    "timestamp": 128,
}
_TOKEN: Final = re.compile(r'\s*(-?)(?:([A-Za-z_][A-Za-z0-9_.]*)([:<>]))?("(?:[^"\\]|\\.)*"|\S+)')


def _kept(field: str) -> Path:
    return ("metadata", PANGEA_METADATA_KEY, "event", field)


def check_event(event: Any, where: str) -> dict[str, Any]:
    """The event object of a log request, checked as Pangea's schema checks it."""
    if not isinstance(event, dict):
        raise FieldError(f"{where} must be an object", source=where, pangea_code="InvalidType")
    message = event.get("message")
    if message is None:
        raise FieldError(
            f"{where}/message is required", source=f"{where}/message", pangea_code="FieldRequired"
        )
    for key, value in event.items():
        limit = _MAX_LENGTHS.get(key)
        if limit is None or value is None:
            continue
        if not isinstance(value, str):
            raise FieldError(
                f"{where}/{key} must be a string",
                source=f"{where}/{key}",
                pangea_code="InvalidType",
            )
        if len(value) > limit:
            raise FieldError(
                f"{where}/{key} is longer than {limit} characters",
                source=f"{where}/{key}",
                pangea_code="MaxLength",
            )
    return event


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else canonical_json(value).decode("utf-8")


def native_content(
    event: dict[str, Any], signature: str | None, public_key: str | None
) -> dict[str, Any]:
    """A Pangea event as native content, the event itself kept verbatim in metadata."""
    kept: dict[str, Any] = {"event": event}
    if signature is not None:
        kept["signature"] = signature
    if public_key is not None:
        kept["public_key"] = public_key
    status = _text(event.get("status"))
    content: dict[str, Any] = {
        "action": _text(event.get("action")) or DEFAULT_ACTION,
        "message": _text(event.get("message")),
        "outcome": status if status in OUTCOMES else "unknown",
        "metadata": {PANGEA_METADATA_KEY: kept},
    }
    for key, home in (("actor", "actor"), ("target", "target")):
        if (value := _text(event.get(key))) is not None:
            content[home] = {"id": value}
    if (source := _text(event.get("source"))) is not None:
        content["source"] = {"service": source}
    for key in ("old", "new"):
        if (value := _text(event.get(key))) is not None:
            content[key] = value
    stamp = _text(event.get("timestamp"))
    if stamp is not None and _parses(stamp):
        content["timestamp"] = stamp
    return {k: v for k, v in content.items() if v is not None}


def _auth0_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def auth0_content(item: Any, where: str) -> dict[str, Any]:
    """An Auth0 log-stream record as a native event.

    ``data.type`` (Auth0's event code, e.g. ``s``, ``f``, ``sapi``) is the action, prefixed
    ``auth0.``; ``description`` the message; ``user_id`` (and ``user_name``) the actor;
    ``ip``, ``user_agent`` and ``client_id`` the source; ``date`` the timestamp; the whole
    record is kept in ``metadata.auth0`` (``log_id`` and ``data``).
    """
    if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
        raise FieldError(
            f"{where} must be an object with a data object",
            source=f"{where}/data",
            pangea_code="InvalidType",
        )
    data: dict[str, Any] = item["data"]
    kind = _auth0_text(data, "type")
    if kind is None:
        raise FieldError(
            f"{where}/data/type is required",
            source=f"{where}/data/type",
            pangea_code="FieldRequired",
        )
    actor = {"id": _auth0_text(data, "user_id"), "name": _auth0_text(data, "user_name")}
    source = {k: _auth0_text(data, k) for k in ("ip", "user_agent", "client_id")}
    content: dict[str, Any] = {
        "action": f"auth0.{kind}",
        "category": "users",
        "message": _auth0_text(data, "description"),
        "actor": {k: v for k, v in actor.items() if v is not None} or None,
        "source": {k: v for k, v in source.items() if v is not None} or None,
        "metadata": {"auth0": {"log_id": item.get("log_id"), "data": data}},
    }
    stamp = _auth0_text(data, "date")
    if stamp is not None and _parses(stamp):
        content["timestamp"] = stamp
    return {k: v for k, v in content.items() if v is not None}


def _parses(stamp: str) -> bool:
    try:
        return parse_time(stamp, param="timestamp") is not None
    except InvalidInputError:
        return False


def _homes(field: str) -> tuple[Path, ...]:
    return (_kept(field), *STANDARD_FIELDS.get(field, ()))


def _term(field: str | None, value: str) -> Node | None:
    if value == "":
        return None  # message:"" matches every event, as Pangea's tests use it
    if field is None:
        fields = tuple(p for name in STANDARD_FIELDS for p in _homes(name))
    else:
        fields = _homes(field)
    return Contains(fields, value, ignore_case=False)


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


def compile_query(query: str | None) -> Node | None:
    """Pangea's query syntax as a query tree: space-separated terms, ANDed, case-sensitive.

    ``value`` (any field contains it), ``field:value`` (the field contains it), ``"a b"``
    quoting, ``-`` to exclude. ``>``/``<`` comparisons are for custom-schema numbers, which
    trailkeep does not keep, so they are refused.
    """
    nodes: list[Node] = []
    text = (query or "").strip()
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FieldError(
                f"cannot read the query at {pos}", source="/query", pangea_code="BadQuery"
            )
        pos = match.end()
        negate, field, op, raw = match.groups()
        if op in ("<", ">"):
            raise FieldError(
                f"comparison {field}{op} is for custom-schema fields, which this server lacks",
                source="/query",
                pangea_code="BadQuery",
            )
        term = _term(field, _unquote(raw))
        if term is not None:
            nodes.append(Not(term) if negate else term)
    return all_of(nodes)


def restriction(given: Any) -> Node | None:
    """``search_restriction``: for each key, the field equals one of the listed values."""
    if given is None:
        return None
    if not isinstance(given, dict):
        raise FieldError(
            "search_restriction must be an object",
            source="/search_restriction",
            pangea_code="InvalidType",
        )
    nodes: list[Node] = []
    for key, values in given.items():
        where = f"/search_restriction/{key}"
        if key not in RESTRICTION_KEYS:
            raise FieldError(
                f"search_restriction has no key {key!r}; it has {', '.join(RESTRICTION_KEYS)}",
                source=where,
                pangea_code="InvalidField",
            )
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise FieldError(
                f"{where} must be a list of strings", source=where, pangea_code="InvalidType"
            )
        nodes.append(any_of(Values(path, tuple(values)) for path in _homes(key)))
    return all_of(nodes)


#: ``order_by`` names and the native field each orders by; ``received_at`` is log order.
_ORDER_PATHS: Final[dict[str, Path]] = {
    "actor": ("actor", "id"),
    "action": ("action",),
    "message": ("message",),
    "source": ("source", "service"),
    "status": ("outcome",),
    "target": ("target", "id"),
    "timestamp": ("timestamp",),
}


def sort_path(order_by: str | None) -> Path | None:
    """The native field ``order_by`` orders by; None for log order (``received_at``)."""
    if order_by is None or order_by == "received_at":
        return None
    path = _ORDER_PATHS.get(order_by)
    return path if path is not None else _kept(order_by)

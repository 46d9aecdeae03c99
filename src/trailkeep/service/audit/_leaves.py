"""The Python path's fast case of checking a stored row: its leaf, query columns and full text,
per shape. (Most rows never reach it: the C part, ``storage._audit_chunk``, vouches for the
common row in one call; this takes what it declines, before the reference functions.)

The definitions are elsewhere and stay the reference: the leaf is ``model.evidence.
event_leaf_hash`` (DESIGN §3), the query columns ``storage.rows.filter_values``, the full text
``query.fulltext.search_document``. Each walks the content generically. A log's rows come in
few *shapes* (top-level keys, and the keys of each committed object that is an object), so for
each shape this compiles once a reader that fetches, in one call, the field values in leaf
order, the query columns and the full-text parts, and hands the first with the row's packed
salts to the C part (``_fastleaf.leaf``), which writes the whole leaf and compares it with the
stored hash. ``tests/service/test_audit.py`` proves each output equal to its reference for any
content; the leaf is vouched for only when it *is* the stored hash, and anything else (a
redacted or null field, a float, no C part, a mismatch) takes the exact path, which gives the
answer or names the field at fault.

Generated code is built from positions only (``c[K3]``, ``o1[K4]``); every key reaches it as
data in its namespace, never as source text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import orjson

from trailkeep.model import _native
from trailkeep.model.commitments import COMMITTED_OBJECTS, POSITIONAL_FIELDS

__all__ = ["FieldsText", "RowPlan", "RowPlans", "fulltext_fields"]

#: content, packed salts, seq, event id, received_at, stored leaf hash ->
#: (the leaf hash if the C part recomputed it, else None; query columns; full-text values)
Reader: TypeAlias = Callable[
    [dict[str, Any], bytes, int, str, str, bytes],
    "tuple[bytes | None, tuple[str | None, ...], tuple[Any, ...]]",
]

_MAX_PLANS: Final = 1024
#: Fields the full text leaves out (``query.fulltext.search_document``: the message has its
#: own column, the timestamp is searched by range, a signature is noise).
NOT_INDEXED: Final = frozenset({"message", "timestamp", "signature"})
#: ``storage.rows.filter_values``, as data: (field, key of a committed object or None,
#: whether a non-string reads as NULL, the value when absent), in ``QUERY_COLUMNS`` order.
COLUMN_SOURCES: Final[tuple[tuple[str, str | None, bool, str | None], ...]] = (
    ("timestamp", None, False, None),
    ("action", None, False, None),
    ("category", None, True, None),
    ("outcome", None, False, "unknown"),
    ("actor", "id", True, None),
    ("actor", "email", True, None),
    ("actor", "type", True, None),
    ("target", "id", True, None),
    ("target", "type", True, None),
    ("source", "ip", True, None),
    ("source", "client_id", True, None),
    ("session_id", None, True, None),
    ("request_id", None, True, None),
    ("trace_id", None, True, None),
    ("idempotency_key", None, True, None),
)
_SOURCE: Final = (
    "def read(c, salts, seq, event_id, received_at, leaf):\n"
    "{fetch}"
    "    return L(KEYS, salts, ({leaf},), event_id, received_at, seq, TENANT, leaf),"
    " ({columns},), ({text},)\n"
)


def _texts(value: Any) -> Iterator[str]:
    """The words ``search_document`` takes from one value, in order."""
    kind = type(value)
    if kind is str:
        yield value
    elif kind is int or kind is float:
        yield str(value)
    elif kind is dict:
        for item in value.values():
            yield from _texts(item)
    elif kind is list:
        for item in value:
            yield from _texts(item)


def fulltext_fields(values: tuple[Any, ...]) -> str:
    """``search_document(...).fields`` from the values a plan read, in document order."""
    parts = []
    for value in values:
        if type(value) is str:
            parts.append(value)
        elif value is not None and type(value) is not bool:
            parts.extend(_texts(value))
    return "\n".join(parts)


class FieldsText:
    """``fulltext_fields`` of one shape's values, compiled once per combination of value types
    (``"\n".join`` of the strings, ``str`` of the numbers, nothing for booleans and nulls);
    values holding objects or lists take ``fulltext_fields`` itself.

    Within a shape the types rarely change from row to row, so the joiner last used is tried
    first: it checks each value's type inline and declines (None) if one differs.
    """

    __slots__ = ("_by_kinds", "_last")

    def __init__(self) -> None:
        self._by_kinds: dict[tuple[type, ...], _Join] = {}
        self._last: _Join = _decline

    def __call__(self, values: tuple[Any, ...]) -> str:
        text = self._last(values)
        if text is not None:
            return text
        kinds = tuple(map(type, values))
        join = self._by_kinds.get(kinds)
        if join is None:
            if len(self._by_kinds) >= _MAX_PLANS:
                return fulltext_fields(values)
            join = self._by_kinds[kinds] = _join_for(kinds)
        self._last = join
        text = join(values)
        assert text is not None  # a joiner accepts the types it was made for
        return text


_Join: TypeAlias = Callable[[tuple[Any, ...]], "str | None"]


def _decline(values: tuple[Any, ...]) -> str | None:
    return None


def _join_for(kinds: tuple[type, ...]) -> _Join:
    """A joiner for values of exactly these types; its code names positions only."""
    namespace: dict[str, Any] = {"J": "\n".join, "S": str, "F": fulltext_fields}
    checks, parts = [], []
    generic = False
    for n, kind in enumerate(kinds):
        namespace[f"A{n}"] = kind
        checks.append(f"type(t[{n}]) is A{n}")
        if kind is str:
            parts.append(f"t[{n}]")
        elif kind is int or kind is float:
            parts.append(f"S(t[{n}])")
        elif kind is not bool and kind is not type(None):
            generic = True  # an object or a list: its words in order, the long way
    joined = "F(t)" if generic else f"J(({', '.join(parts)}{',' if parts else ''}))"
    test = " and ".join(checks) or "True"
    join: _Join = eval(f"lambda t: {joined} if {test} else None", namespace)  # noqa: S307
    return join


@dataclass(frozen=True, slots=True)
class RowPlan:
    """How to read rows of one shape.

    Attributes:
        keys: the field paths as JSON strings, in JCS order (the C part's ``keys``).
        read: see ``Reader``: the leaf checked by the C part, the query columns, the
            full-text values, in one call.
        fields: full-text values -> ``search_document(content).fields``.
    """

    keys: tuple[str, ...]
    read: Reader
    fields: FieldsText


def shape(content: dict[str, Any]) -> tuple[Any, ...]:
    """A content's shape: its keys, and those of each committed object (``COMMITTED_OBJECTS``,
    in that order) that is an object. Spelled out rather than looped: it runs once per row."""
    get = content.get
    actor, target, source, metadata = get("actor"), get("target"), get("source"), get("metadata")
    return (
        tuple(content),
        tuple(actor) if type(actor) is dict else None,
        tuple(target) if type(target) is dict else None,
        tuple(source) if type(source) is dict else None,
        tuple(metadata) if type(metadata) is dict else None,
    )


def compile_plan(of: tuple[Any, ...], tenant_json: str) -> RowPlan | None:
    """The plan of the rows of shape ``of`` in the tenant whose id as JSON is ``tenant_json``;
    None if only the exact path may judge them (a server field or a dotted name in the
    content, keys whose JCS order is not code point order, a key with no JSON, no C part)."""
    if _native.leaf is None:
        return None
    top, members = of[0], dict(zip(COMMITTED_OBJECTS, of[1:], strict=True))
    namespace: dict[str, Any] = {"L": _native.leaf, "TENANT": tenant_json}
    fetch: list[str] = []  # statements reading each value once, into a local
    local: dict[tuple[str, str | None], str] = {}  # (field, member or None) -> its local
    paths: list[tuple[str, str]] = []  # (path, local)

    def key(value: str) -> str:
        name = f"K{len(namespace)}"
        namespace[name] = value
        return name

    for name in top:
        if type(name) is not str or "." in name or name in POSITIONAL_FIELDS:
            return None
        if members.get(name) is None:  # a field committed whole
            local[(name, None)] = f"v{len(local)}"
            fetch.append(f"{local[(name, None)]} = c[{key(name)}]")
            paths.append((name, local[(name, None)]))
            continue
        parent = f"o{len(fetch)}"  # a committed object: each member is a field
        fetch.append(f"{parent} = c[{key(name)}]")
        for sub in members[name]:
            if type(sub) is not str:
                return None
            local[(name, sub)] = f"v{len(local)}"
            fetch.append(f"{local[(name, sub)]} = {parent}[{key(sub)}]")
            paths.append((f"{name}.{sub}", local[(name, sub)]))
    paths.sort()
    names = [p for p, _ in paths]
    if names != sorted(names, key=lambda p: p.encode("utf-16-be", "surrogatepass")):
        return None  # JCS orders by UTF-16 units; the packed salts are in code point order
    try:
        keys = tuple(orjson.dumps(p).decode() for p in names)
    except orjson.JSONEncodeError:
        return None
    source = _SOURCE.format(
        fetch="".join(f"    {line}\n" for line in fetch),
        leaf=", ".join(v for _, v in paths),
        columns=", ".join(_column(source, local, key) for source in COLUMN_SOURCES),
        text=", ".join(v for (name, _), v in local.items() if name not in NOT_INDEXED),
    )
    exec(compile(source, f"<row shape of {len(keys)} fields>", "exec"), namespace)  # noqa: S102
    namespace["KEYS"] = keys
    reader: Reader = namespace["read"]
    return RowPlan(keys, reader, FieldsText())


def _column(
    source: tuple[str, str | None, bool, str | None],
    local: dict[tuple[str, str | None], str],
    key: Callable[[str], str],
) -> str:
    """The expression of one query column (``storage.rows.filter_values``) over the locals."""
    name, sub, text_only, absent = source
    value = local.get((name, sub))
    if value is None:  # absent (for a member: or its object is not an object)
        return "None" if absent is None else key(absent)
    return f"({value} if type({value}) is str else None)" if text_only else value


class RowPlans:
    """Plans by shape, for the rows of one tenant. Not thread-safe; one per audit."""

    __slots__ = ("_plans", "_tenant_json")

    def __init__(self, tenant_id: str) -> None:
        self._plans: dict[tuple[Any, ...], RowPlan | None] = {}
        self._tenant_json = orjson.dumps(tenant_id).decode()

    def plan(self, content: dict[str, Any]) -> RowPlan | None:
        """The plan of ``content``'s shape (None: take the reference functions)."""
        of = shape(content)
        try:
            return self._plans[of]
        except KeyError:
            if len(self._plans) >= _MAX_PLANS:
                return None
            plan = self._plans[of] = compile_plan(of, self._tenant_json)
            return plan

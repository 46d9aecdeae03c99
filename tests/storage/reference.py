"""A brute-force reference for the query tree: the answer, by evaluating every event in Python.

Written from the contract (``docs/briefs``' query interface, ``trailkeep.query.ast``), not from
the compilers, so a compiler that drifts from it fails the property tests on either backend.
Search-language ``Term`` nodes are covered for plain ``field:value`` matches only (free text has
its own corpus tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import (
    And,
    Compare,
    Contains,
    Each,
    Exists,
    Node,
    Not,
    Or,
    Term,
    Values,
)
from trailkeep.query.fields import FieldKind, resolve
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.query.values import as_number

__all__ = ["MISSING", "ref_count", "ref_distinct", "ref_matches", "ref_select", "value_at"]

MISSING: Any = object()
_OUTSIDE_BODY = {"id", "seq", "received_at"}


def _walk(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if type(doc) is not dict or key not in doc:
            return MISSING
        doc = doc[key]
    return doc


def value_at(event: StoredEvent, field: tuple[str, ...]) -> Any:
    """The value of a field of an event (a column field reads as a string or missing)."""
    spec = resolve(field)
    if spec.name in _OUTSIDE_BODY:
        return getattr(event, spec.name)
    if spec.column is not None:
        path = ("timestamp",) if spec.column == "ts" else tuple(spec.name.split("."))
        return _walk(event.content, path)
    return _walk(event.content, spec.path or field)


def _column_only(field: tuple[str, ...]) -> bool:
    spec = resolve(field)
    return spec.column is not None and spec.name not in _OUTSIDE_BODY


def _equal(value: Any, wanted: Any) -> bool:
    if type(wanted) is bool or type(value) is bool:
        return type(value) is type(wanted) and value == wanted
    if type(wanted) is int:
        return type(value) in (int, float) and value == wanted
    return type(value) is str and value == wanted


def _order_ok(value: Any, op: str, wanted: str | int) -> bool:
    if type(wanted) is str:
        if type(value) is not str:
            return False
        a, b = value.encode(), wanted.encode()
    else:
        if type(value) not in (int, float):
            return False
        a, b = value, wanted
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _contains(value: Any, text: str, ignore_case: bool) -> bool:
    if type(value) is not str:
        return False
    if ignore_case:
        return _ascii_lower(text) in _ascii_lower(value)
    return text in value


def _term(value: Any, term: Term) -> bool:
    """``field:value`` (no prefix): typed match, arrays by element."""
    items = value if type(value) is list else [value]
    number = as_number(term.value)
    for item in items:
        if type(item) is str and item == term.value:
            return True
        if number is not None and type(item) in (int, float) and item == number:
            return True
        if term.value in ("true", "false") and item is (term.value == "true"):
            return True
        if term.value == "null" and item is None:
            return True
    return False


def ref_matches(node: Node, event: StoredEvent, element: Any = MISSING) -> bool:
    """Whether ``node`` holds for ``event`` (or, inside ``Each``, for ``element``)."""

    def at(field: tuple[str, ...]) -> Any:
        if element is not MISSING:
            return element if not field else _walk(element, field)
        return value_at(event, field)

    if isinstance(node, And):
        return all(ref_matches(c, event, element) for c in node.children)
    if isinstance(node, Or):
        return any(ref_matches(c, event, element) for c in node.children)
    if isinstance(node, Not):
        return not ref_matches(node.child, event, element)
    if isinstance(node, Values):
        value = at(node.field)
        return value is not MISSING and any(_equal(value, v) for v in node.values)
    if isinstance(node, Contains):
        return any(_contains(at(f), node.text, node.ignore_case) for f in node.fields)
    if isinstance(node, Exists):
        value = at(node.field)
        if element is MISSING and _column_only(node.field):
            return type(value) is str  # the column holds strings only
        return value is not MISSING and value is not None
    if isinstance(node, Compare):
        return _order_ok(at(node.field), node.op, node.value)
    if isinstance(node, Each):
        value = at(node.field)
        return type(value) is list and any(ref_matches(node.where, event, e) for e in value)
    if isinstance(node, Term):
        assert node.field is not None
        assert node.op == ":"
        assert not node.prefix
        value = at(node.field)
        kind = resolve(node.field).kind
        if kind is FieldKind.JSON:
            return _term(value, node)
        return type(value) is str and value == node.value
    raise TypeError(node)


def _in_range(event: StoredEvent, query: EventQuery) -> bool:
    ts = event.content["timestamp"]
    if query.start is not None and ts < query.start:
        return False
    if query.max_seq is not None and event.seq > query.max_seq:
        return False
    if query.after_seq is not None and event.seq <= query.after_seq:
        return False
    return query.end is None or ts < query.end


def _rank_key(value: Any) -> tuple[Any, ...]:
    """The documented order of values: missing/null, false, true, numbers, strings, the rest."""
    if value is MISSING or value is None:
        return (0,)
    if value is False:
        return (1,)
    if value is True:
        return (2,)
    if type(value) in (int, float):
        return (3, value)
    if type(value) is str:
        return (4, value.encode())
    return (5,)


def _matching(events: Iterable[StoredEvent], query: EventQuery) -> list[StoredEvent]:
    return [
        e
        for e in events
        if _in_range(e, query) and (query.where is None or ref_matches(query.where, e))
    ]


def ref_select(events: Iterable[StoredEvent], query: EventQuery) -> list[StoredEvent]:
    """The page ``query`` asks for."""
    found = _matching(events, query)
    found.sort(key=lambda e: (e.content["timestamp"], e.id))
    if query.order_by is not None:
        field = query.order_by
        if _column_only(field):
            found.sort(key=lambda e: _rank_key(_as_column(value_at(e, field))))
        else:
            found.sort(key=lambda e: _rank_key(value_at(e, field)))
    if query.sort is Sort.DESC:
        found.reverse()
    return found[query.offset : query.offset + query.limit]


def _as_column(value: Any) -> Any:
    return value if type(value) is str else MISSING


def ref_count(events: Iterable[StoredEvent], query: EventQuery) -> int:
    return len(_matching(events, query))


def ref_distinct(
    events: Iterable[StoredEvent], field: tuple[str, ...], query: EventQuery
) -> Counter[tuple[str, Any]]:
    """Every distinct value of ``field`` among the matches (typed keys), with its count."""
    counts: Counter[tuple[str, Any]] = Counter()
    for event in _matching(events, query):
        value = value_at(event, field)
        if _column_only(field):
            value = _as_column(value)
        if value is MISSING or value is None:
            continue
        counts[_typed_key(value)] += 1
    return counts


def _typed_key(value: Any) -> tuple[str, Any]:
    if type(value) is bool:
        return ("bool", value)
    if type(value) in (int, float):
        return ("number", value)
    if type(value) is str:
        return ("string", value)
    return ("json", repr(value))

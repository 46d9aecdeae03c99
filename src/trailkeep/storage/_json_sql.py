"""How each backend spells the typed value conditions (``Values``, ``Contains``, ``Exists``,
``Compare``, ``Each``), value orders and distinct values; every value is bound.

A value lives in a column (strings only: ``rows.event_row`` stores nothing else there) or at a
JSON path (``Ref``) in the event body or, inside ``Each``, in the current array element. The
two backends agree exactly:

* a str equals a JSON string, an int or bool a JSON number or ``true``/``false``; arrays are
  values of their own (never matched element-wise) and a missing value matches nothing;
* ``Contains`` reads strings only and folds ASCII letters only (``lower()`` in SQLite without
  ICU; in PostgreSQL ``lower()`` under ``COLLATE "C"``, which folds ASCII alone, where the
  database's locale would fold every letter);
* strings order by code point (SQLite's BINARY, PostgreSQL's ``COLLATE "C"``);
* a value's order key is ``(rank, number, string, json)``: missing or null, false, true,
  numbers, strings, arrays and objects; so a missing value sorts as the smallest.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

import orjson

from trailkeep.query.ast import Scalar
from trailkeep.storage._sql import FALSE, SqlFragment
from trailkeep.storage.postgres_schema import METADATA_KEYS, metadata_column
from trailkeep.storage.sqlite_schema import METADATA_COLUMNS

__all__ = ["PostgresJson", "Ref", "SqliteJson", "TypedSql", "ascii_lower", "from_key"]

_UPPER: Final = string.ascii_uppercase
_LOWER: Final = string.ascii_lowercase
_ASCII_LOWER: Final = str.maketrans(_UPPER, _LOWER)
_OPS: Final = frozenset({">", ">=", "<", "<="})
#: A key PostgreSQL's ``#>`` would read as an array index.
_INDEX_LIKE: Final = re.compile(r"\s*[+-]?\d+\s*")
#: A string json_extract could also return for an array or object (its JSON text).
_JSON_TEXT: Final = re.compile(r"[\[{]")
#: Most values whose encoded bytes SQLite checks for in the raw body before parsing it.
_MAX_NEEDLES: Final = 8


def ascii_lower(text: str) -> str:
    """``text`` with ASCII letters lowered and every other character kept."""
    return text.translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class Ref:
    """A JSON value: at ``path`` in the event body, or (``element``) in the array element
    ``Each`` is looking at (``()`` being the element itself)."""

    path: tuple[str, ...]
    element: bool = False


def _split(values: Sequence[Scalar]) -> tuple[list[str], list[int], list[bool]]:
    strs = [v for v in values if type(v) is str]
    ints = [v for v in values if type(v) is int]
    bools = [v for v in values if type(v) is bool]
    return strs, ints, bools


def _check_op(op: str) -> str:
    if op not in _OPS:
        raise ValueError(f"not a comparison: {op!r}")
    return op


def from_key(rank: int, number: object, text: object, raw: object) -> object:
    """The Python value of an order key (``distinct``'s rows): bool, int, float, str, JSON."""
    if rank in (1, 2):
        return rank == 2
    if rank == 3:
        if isinstance(number, Decimal):
            return int(number) if number == number.to_integral_value() else float(number)
        return number
    if rank == 4:
        return text
    return json.loads(raw) if isinstance(raw, str) else raw


class TypedSql(Protocol):
    """One backend's spelling of the typed conditions."""

    @property
    def placeholder(self) -> str:
        """The paramstyle's marker: ``?`` or ``%s``."""
        ...

    def values(self, ref: Ref, values: Sequence[Scalar]) -> SqlFragment: ...

    def contains(self, ref: Ref, text: str, ignore_case: bool) -> SqlFragment: ...

    def exists(self, ref: Ref) -> SqlFragment: ...

    def compare(self, ref: Ref, op: str, value: str | int) -> SqlFragment: ...

    def each(self, ref: Ref, inner: SqlFragment) -> SqlFragment:
        """``inner`` (built over element refs) holds for some element of the array."""
        ...

    def order_key(self, ref: Ref) -> list[SqlFragment]:
        """The four expressions ``rank, number, string, json`` of a value's order."""
        ...

    def column_values(self, column: str, values: Sequence[str | int]) -> SqlFragment: ...

    def column_contains(self, column: str, text: str, ignore_case: bool) -> SqlFragment: ...


@dataclass(frozen=True, slots=True)
class SqliteJson:
    """SQLite JSON1 over the body text; ``e`` is the ``json_each`` row inside ``Each``."""

    body: str = "CAST(body AS TEXT)"
    stored: str = "body"
    placeholder: str = "?"

    def _type(self, ref: Ref) -> SqlFragment:
        if not ref.element:
            return SqlFragment(f"json_type({self.body}, ?)", (_path(ref.path),))
        if not ref.path:
            return SqlFragment("e.type", ())
        return SqlFragment(
            "(CASE WHEN e.type = 'object' THEN json_type(e.value, ?) END)", (_path(ref.path),)
        )

    def _value(self, ref: Ref) -> SqlFragment:
        if not ref.element:
            return SqlFragment(f"json_extract({self.body}, ?)", (_path(ref.path),))
        if not ref.path:
            return SqlFragment("e.value", ())
        return SqlFragment(
            "(CASE WHEN e.type = 'object' THEN json_extract(e.value, ?) END)", (_path(ref.path),)
        )

    def values(self, ref: Ref, values: Sequence[Scalar]) -> SqlFragment:
        strs, ints, bools = _split(values)
        column = None if ref.element else METADATA_COLUMNS.get(ref.path)
        if column is not None and strs and not any(_JSON_TEXT.match(s) for s in strs):
            # The indexed virtual column holds json_extract's value: a JSON string as text,
            # a number or boolean as a number, an array or object as JSON text (starting with
            # ``[`` or ``{``). So a string that starts otherwise equals it exactly when the
            # JSON value is that string, with no type check: an index-only answer.
            found = self.column_values(column, strs)
            if not ints and not bools:
                return found
            return _or([found, self.values(ref, [*ints, *bools])])
        t, v = self._type(ref), self._value(ref)
        parts: list[SqlFragment] = []
        if strs:
            marks = ", ".join("?" * len(strs))
            parts.append(
                SqlFragment(
                    f"({v.sql} IN ({marks}) AND {t.sql} = 'text')", (*v.params, *strs, *t.params)
                )
            )
        if ints:
            marks = ", ".join("?" * len(ints))
            parts.append(
                SqlFragment(
                    f"({v.sql} IN ({marks}) AND {t.sql} IN ('integer', 'real'))",
                    (*v.params, *ints, *t.params),
                )
            )
        if bools:
            names = tuple(dict.fromkeys("true" if b else "false" for b in bools))
            marks = ", ".join("?" * len(names))
            parts.append(SqlFragment(f"{t.sql} IN ({marks})", (*t.params, *names)))
        if not parts:
            return FALSE
        joined = _or(parts)
        if ref.element or ints or bools or len(strs) > _MAX_NEEDLES:
            return joined
        return self._needles(strs, joined)

    def _needles(self, texts: Sequence[str], condition: SqlFragment) -> SqlFragment:
        """A necessary condition first: the raw body holds one of the strings as orjson
        writes them (every body is written by orjson), which skips the parse for most rows."""
        try:
            needles = [orjson.dumps(text) for text in texts]
        except orjson.JSONEncodeError:  # a lone surrogate: no shortcut
            return condition
        tests = " OR ".join(f"instr({self.stored}, ?) > 0" for _ in needles)
        return SqlFragment(f"(({tests}) AND {condition.sql})", (*needles, *condition.params))

    def contains(self, ref: Ref, text: str, ignore_case: bool) -> SqlFragment:
        t, v = self._type(ref), self._value(ref)
        haystack = f"lower({v.sql})" if ignore_case else v.sql
        needle = ascii_lower(text) if ignore_case else text
        return SqlFragment(
            f"(instr({haystack}, ?) > 0 AND {t.sql} = 'text')", (*v.params, needle, *t.params)
        )

    def exists(self, ref: Ref) -> SqlFragment:
        t = self._type(ref)
        return SqlFragment(f"({t.sql} <> 'null')", t.params)

    def compare(self, ref: Ref, op: str, value: str | int) -> SqlFragment:
        t, v = self._type(ref), self._value(ref)
        kinds = "('text')" if type(value) is str else "('integer', 'real')"
        if type(value) not in (str, int):
            return FALSE
        return SqlFragment(
            f"({v.sql} {_check_op(op)} ? AND {t.sql} IN {kinds})", (*v.params, value, *t.params)
        )

    def each(self, ref: Ref, inner: SqlFragment) -> SqlFragment:
        if ref.element:
            raise ValueError("Each cannot nest inside Each")
        path = _path(ref.path)
        sql = (
            f"(json_type({self.body}, ?) = 'array' AND EXISTS (SELECT 1"  # noqa: S608 - ours
            f" FROM json_each({self.body}, ?) AS e WHERE {inner.sql}))"
        )
        return SqlFragment(sql, (path, path, *inner.params))

    def order_key(self, ref: Ref) -> list[SqlFragment]:
        t, v = self._type(ref), self._value(ref)
        rank = (
            f"(CASE {t.sql} WHEN 'false' THEN 1 WHEN 'true' THEN 2 WHEN 'integer' THEN 3"
            " WHEN 'real' THEN 3 WHEN 'text' THEN 4 WHEN 'array' THEN 5 WHEN 'object' THEN 5"
            " ELSE 0 END)"
        )
        number = f"(CASE WHEN {t.sql} IN ('integer', 'real') THEN {v.sql} END)"
        text = f"(CASE WHEN {t.sql} = 'text' THEN {v.sql} END)"
        raw = f"(CASE WHEN {t.sql} IN ('array', 'object') THEN {v.sql} END)"
        both = (*t.params, *v.params)
        return [
            SqlFragment(rank, t.params),
            SqlFragment(number, both),
            SqlFragment(text, both),
            SqlFragment(raw, both),
        ]

    def column_values(self, column: str, values: Sequence[str | int]) -> SqlFragment:
        if len(values) == 1:
            return SqlFragment(f"{column} = ?", (values[0],))
        return SqlFragment(f"{column} IN ({', '.join('?' * len(values))})", tuple(values))

    def column_contains(self, column: str, text: str, ignore_case: bool) -> SqlFragment:
        if ignore_case:
            return SqlFragment(f"instr(lower({column}), ?) > 0", (ascii_lower(text),))
        return SqlFragment(f"instr({column}, ?) > 0", (text,))


@dataclass(frozen=True, slots=True)
class PostgresJson:
    """PostgreSQL ``jsonb`` over the body; ``e(v)`` is the element row inside ``Each``."""

    body: str = "convert_from(body, 'UTF8')::jsonb"
    placeholder: str = "%s"

    def _at(self, ref: Ref) -> SqlFragment:
        """The jsonb value (NULL when missing). ``#>`` reads a key like ``0`` as an index
        into an array, which SQLite never does, so such paths use a strict jsonpath."""
        doc = "e.v" if ref.element else self.body
        if not ref.path:
            return SqlFragment(doc, ())
        if any(_INDEX_LIKE.fullmatch(key) for key in ref.path):
            strict = "strict $" + "".join("." + json.dumps(k, ensure_ascii=False) for k in ref.path)
            return SqlFragment(
                f"jsonb_path_query_first({doc}, %s::jsonpath, '{{}}'::jsonb, true)", (strict,)
            )
        return SqlFragment(f"({doc} #> %s::text[])", (list(ref.path),))

    def values(self, ref: Ref, values: Sequence[Scalar]) -> SqlFragment:
        if not values:
            return FALSE
        literals = tuple(dict.fromkeys(json.dumps(_pg_json(v)) for v in values))
        marks = ", ".join(["%s::jsonb"] * len(literals))
        key = _indexed_metadata(ref)
        if key is not None:
            # Migration 9's stored column of the value (indexed where not NULL): a count
            # reads the index alone; the jsonb equality is as typed as below.
            return SqlFragment(f"({metadata_column(key)} IN ({marks}))", literals)
        x = self._at(ref)
        return SqlFragment(f"({x.sql} IN ({marks}))", (*x.params, *literals))

    def contains(self, ref: Ref, text: str, ignore_case: bool) -> SqlFragment:
        x = self._at(ref)
        value = f"({x.sql} #>> '{{}}')"
        haystack = f'lower({value} COLLATE "C")' if ignore_case else value
        needle = ascii_lower(text) if ignore_case else text
        return SqlFragment(
            f"(jsonb_typeof({x.sql}) = 'string' AND strpos({haystack}, %s) > 0)",
            (*x.params, *x.params, _pg_text(needle)),
        )

    def exists(self, ref: Ref) -> SqlFragment:
        x = self._at(ref)
        return SqlFragment(f"(jsonb_typeof({x.sql}) <> 'null')", x.params)

    def compare(self, ref: Ref, op: str, value: str | int) -> SqlFragment:
        x = self._at(ref)
        if type(value) is str:
            sql = (
                f"(jsonb_typeof({x.sql}) = 'string'"
                f" AND ({x.sql} #>> '{{}}') COLLATE \"C\" {_check_op(op)} %s)"
            )
            return SqlFragment(sql, (*x.params, *x.params, _pg_text(value)))
        if type(value) is not int:
            return FALSE
        sql = (
            f"(jsonb_typeof({x.sql}) = 'number'"
            f" AND ({x.sql} #>> '{{}}')::numeric {_check_op(op)} %s)"
        )
        return SqlFragment(sql, (*x.params, *x.params, value))

    def each(self, ref: Ref, inner: SqlFragment) -> SqlFragment:
        if ref.element:
            raise ValueError("Each cannot nest inside Each")
        x = self._at(ref)
        sql = (
            "EXISTS (SELECT 1 FROM jsonb_array_elements("  # noqa: S608 - ours, values bound
            f"CASE WHEN jsonb_typeof({x.sql}) = 'array' THEN {x.sql} END) AS e(v)"
            f" WHERE {inner.sql})"
        )
        return SqlFragment(sql, (*x.params, *x.params, *inner.params))

    def order_key(self, ref: Ref) -> list[SqlFragment]:
        x = self._at(ref)
        t = f"jsonb_typeof({x.sql})"
        rank = (
            f"(CASE {t} WHEN 'boolean' THEN (CASE WHEN {x.sql} = 'true'::jsonb THEN 2 ELSE 1 END)"
            " WHEN 'number' THEN 3 WHEN 'string' THEN 4 WHEN 'array' THEN 5"
            " WHEN 'object' THEN 5 ELSE 0 END)"
        )
        number = f"(CASE WHEN {t} = 'number' THEN ({x.sql} #>> '{{}}')::numeric END)"
        text = f"(CASE WHEN {t} = 'string' THEN ({x.sql} #>> '{{}}') COLLATE \"C\" END)"
        raw = f"(CASE WHEN {t} IN ('array', 'object') THEN {x.sql}::text END)"
        p = x.params
        return [
            SqlFragment(rank, (*p, *p)),
            SqlFragment(number, (*p, *p)),
            SqlFragment(text, (*p, *p)),
            SqlFragment(raw, (*p, *p)),
        ]

    def column_values(self, column: str, values: Sequence[str | int]) -> SqlFragment:
        bound = tuple(_pg_text(v) if type(v) is str else v for v in values)
        if len(bound) == 1:
            return SqlFragment(f"{column} = %s", bound)
        return SqlFragment(f"{column} IN ({', '.join(['%s'] * len(bound))})", bound)

    def column_contains(self, column: str, text: str, ignore_case: bool) -> SqlFragment:
        if ignore_case:
            folded = f'lower({column} COLLATE "C")'
            return SqlFragment(f"strpos({folded}, %s) > 0", (_pg_text(ascii_lower(text)),))
        return SqlFragment(f"strpos({column}, %s) > 0", (_pg_text(text),))


def _indexed_metadata(ref: Ref) -> str | None:
    """The key of ``metadata.<key>`` when PostgreSQL indexes it (``postgres_schema``)."""
    if ref.element or len(ref.path) != 2 or ref.path[0] != "metadata":
        return None
    return ref.path[1] if ref.path[1] in METADATA_KEYS else None


def _path(path: tuple[str, ...]) -> str:
    """A SQLite JSON path with every key quoted: ``$."metadata"."model"``."""
    return "$" + "".join(f'."{key}"' for key in path)


def _pg_json(value: Scalar) -> Scalar:
    return _pg_text(value) if type(value) is str else value


def _pg_text(value: str) -> str:
    """NUL cannot be in PostgreSQL text (the columns hold U+FFFD instead, ``pg_text``)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _or(parts: list[SqlFragment]) -> SqlFragment:
    if len(parts) == 1:
        return parts[0]
    return SqlFragment(
        "(" + " OR ".join(p.sql for p in parts) + ")", tuple(x for p in parts for x in p.params)
    )

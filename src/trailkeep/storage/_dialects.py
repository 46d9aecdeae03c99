"""The SQL each backend needs for one field condition; every value is a bound parameter.

The compiler decides *what* a term means (which column, which typed comparison); a dialect
only spells it. Operators come from the fixed set the parser accepts and identifiers from code,
so neither is user input; values, JSON paths and patterns always travel as parameters.

Values inside the JSON body match by type: a value matches a JSON string equal to it, and also
a JSON number, ``true``, ``false`` or ``null`` when it reads as one; a comparison with a
number compares only JSON numbers, with anything else only strings; a prefix reads only
strings. A path that ends at an array matches when any element does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final, Protocol

import orjson

from trailkeep.query.values import MAX_INT64
from trailkeep.storage._fulltext import Fts5, FullText, TsVector
from trailkeep.storage._json_sql import PostgresJson, SqliteJson, TypedSql
from trailkeep.storage._sql import FALSE, SqlFragment, join

__all__ = [
    "FALSE",
    "HOUR_TOTAL",
    "PARSED_BODY",
    "PG_HOUR_DIMS",
    "Dialect",
    "PostgresDialect",
    "SqliteDialect",
    "column_exists",
    "glob_prefix",
    "jsonpath",
    "like_prefix",
    "sqlite_path",
]

#: Dimension of the per-hour totals of all events (``Dialect.hour_totals``, value ``""``).
HOUR_TOTAL: Final = "_hour"
#: What PostgreSQL's ``hour_totals`` (migration 9) counts per hour besides all events: each
#: ``dim`` and the event field it counts. ``PostgresDialect.hour_dims``, the writer's counts
#: and ``verify database``'s recount read it; the migration spells it out (migrations are frozen).
PG_HOUR_DIMS: Final = {
    "action": ("action",),
    "outcome": ("outcome",),
    "target.type": ("target", "type"),
}

_JSON_LITERALS: Final = ("true", "false", "null")
#: Most strings whose bytes one OR'ed match checks for before parsing (each ``instr`` costs
#: about a quarter of a parse, measured at 20 needles: 6 µs a row against 2 for one parse).
_MAX_NEEDLES: Final = 8
#: The parsed body a store's PostgreSQL dialect reads (``PostgresDialect(body=PARSED_BODY)``):
#: a column of a per-row subquery that ``events_from`` joins when a statement uses it.
PARSED_BODY: Final = "d.doc"
#: The parsed body of the conditions behind a byte screen (``PostgresDialect.screened``).
_SCREENED_BODY: Final = "sb.doc"
_SQL_OPS: Final = {":": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}


class Dialect(Protocol):
    """What the compiler needs from a backend.

    ``op`` is always one of ``: > >= < <=`` (``:`` meaning equality); ``path`` is a JSON path
    into the event body whose keys the parser has checked (non-empty, no ``"``, ``\\`` or
    control characters).
    """

    @property
    def full_text(self) -> FullText: ...

    @property
    def typed(self) -> TypedSql:
        """The typed value conditions of the tree's other nodes."""
        ...

    @property
    def row_key(self) -> str:
        """The column that names one events row most cheaply: what a deep page's skipped rows
        are walked by (every index of SQLite holds the row id, so any index covers it)."""
        ...

    @property
    def rollups(self) -> bool:
        """Whether ``facet_counts`` holds each tenant's exact event counts per hour of ``ts``
        (dimension ``_hour``) and per facet dimension, value and day, kept by the writer in the
        events' transaction (and recounted by ``verify database``)."""
        ...

    @property
    def hour_totals(self) -> str:
        """A relation of ``(tenant_id, dim, value, period, n)``: exact event counts per tenant
        and hour of ``ts`` (``period``, ``YYYY-MM-DDTHH``), of all events (``dim = '_hour'``,
        ``value = ''``) and per value of each of ``hour_dims`` (``dim`` the field's dotted
        name), kept by the writer in the events' transaction and lowered by every deletion
        and erasure; a count may be 0."""
        ...

    @property
    def hour_dims(self) -> frozenset[tuple[str, ...]]:
        """The fields whose values ``hour_totals`` counts per hour."""
        ...

    @property
    def nulls_smallest(self) -> bool:
        """Whether NULL sorts first ascending and last descending, as a missing value must
        (SQLite); else ``ORDER BY`` spells it: ``NULLS FIRST`` ascending, ``NULLS LAST``
        descending."""
        ...

    def events_from(self, *uses: str) -> str:
        """What a statement reads ``FROM``, given the SQL it will hold (the events table, or
        the table joined to what that SQL needs beside it)."""
        ...

    def compare(self, column: str, op: str, value: object) -> SqlFragment: ...

    def prefix(self, column: str, prefix: str) -> SqlFragment: ...

    def json_match(self, path: tuple[str, ...], value: str, number: Decimal | None) -> SqlFragment:
        """A JSON value (or array element) equal to ``value`` as text or ``number``."""
        ...

    def json_match_any(
        self, path: tuple[str, ...], values: Sequence[tuple[str, Decimal | None]]
    ) -> SqlFragment:
        """``json_match`` of any of ``values`` (OR'ed terms on one path), reading it once."""
        ...

    def json_prefix(self, path: tuple[str, ...], prefix: str) -> SqlFragment: ...

    def json_compare(
        self, path: tuple[str, ...], op: str, value: str, number: Decimal | None
    ) -> SqlFragment:
        """A JSON number (when ``number`` is given) or string in order with ``value``."""
        ...

    def json_exists(self, path: tuple[str, ...]) -> SqlFragment:
        """The path holds a value other than JSON null."""
        ...

    def body_contains(
        self, text: str, ignore_case: bool, documented: bool = False
    ) -> SqlFragment | None:
        """A necessary condition of any string in the body containing ``text`` (ASCII
        case-insensitive when ``ignore_case``), cheaper than reading one; None when there is
        none worth testing. ``documented``: the strings are all at paths the event's search
        document holds (``query.fulltext.in_document``), so the condition may read it."""
        ...

    def behind_screen(self) -> Dialect:
        """The dialect to compile the conditions ``screened`` puts behind a screen with."""
        ...

    def screened(self, screen: SqlFragment, inner: SqlFragment) -> SqlFragment:
        """``inner`` (compiled with ``behind_screen()``) read only for rows ``screen`` passes."""
        ...


def column_exists(column: str) -> SqlFragment:
    """The column holds a value (the same SQL in every dialect)."""
    return SqlFragment(f"{column} IS NOT NULL", ())


@dataclass(frozen=True, slots=True)
class SqliteDialect:
    """SQLite: ``?`` placeholders, JSON1 over the body, ``GLOB`` for prefixes.

    Prefixes use ``GLOB`` (case-sensitive, like ``=``, and able to use an index) rather than
    ``LIKE``, which SQLite folds for ASCII. The body is cast to text because SQLite 3.45+
    first tries to read a BLOB argument as binary JSONB.

    A string match or prefix first checks, with ``instr``, that the stored bytes contain the
    value as ``orjson`` writes it (quoted and escaped, the way every body is written), and only
    then parses the body: a necessary condition that costs a third of a parse, and skips it for
    most rows when the value is rare.

    Attributes:
        body: the SQL expression of an event's JSON text.
        stored: the SQL expression of the bytes that text was read from (``orjson.dumps``).
        full_text: the full-text strategy.
    """

    body: str = "CAST(body AS TEXT)"
    stored: str = "body"
    full_text: FullText = field(default_factory=Fts5)
    row_key: str = "row_id"
    nulls_smallest: bool = True
    rollups: bool = True
    hour_totals: str = (
        "(SELECT tenant_id, dim, value, period, n FROM facet_counts WHERE length(period) = 13)"
    )
    hour_dims: frozenset[tuple[str, ...]] = frozenset(
        {("action",), ("category",), ("outcome",), ("target", "type")}
    )

    @property
    def typed(self) -> TypedSql:
        return SqliteJson(self.body, self.stored)

    def events_from(self, *uses: str) -> str:
        return "events"

    def compare(self, column: str, op: str, value: object) -> SqlFragment:
        return SqlFragment(f"{column} {_SQL_OPS[op]} ?", (value,))

    def prefix(self, column: str, prefix: str) -> SqlFragment:
        return SqlFragment(f"{column} GLOB ?", (glob_prefix(prefix),))

    def _each(
        self, path: tuple[str, ...], condition: str, params: tuple[object, ...]
    ) -> SqlFragment:
        # Rows of json_each are the scalar at the path (key NULL) or an array's elements (integer
        # keys); an object's members (text keys) are excluded, so objects never match. The body
        # expression and the condition are ours, never user input; values are bound.
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({self.body}, ?) AS j"  # noqa: S608
            f" WHERE typeof(j.key) <> 'text' AND ({condition}))"
        )
        return SqlFragment(sql, (sqlite_path(path), *params))

    def json_match(self, path: tuple[str, ...], value: str, number: Decimal | None) -> SqlFragment:
        return self.json_match_any(path, [(value, number)])

    def json_match_any(
        self, path: tuple[str, ...], values: Sequence[tuple[str, Decimal | None]]
    ) -> SqlFragment:
        # Values that can only match as strings share one parse behind a byte check for any
        # of them; the others (numbers, JSON literals) share one parse with no check.
        plain = [v for v, number in values if number is None and v not in _JSON_LITERALS]
        other = [(v, number) for v, number in values if number is not None or v in _JSON_LITERALS]
        parts = []
        if plain:
            parts.append(self._contains_any(plain, self._match_each(path, plain, [])))
        if other:
            parts.append(self._match_each(path, [v for v, _ in other], other))
        if len(parts) == 1:
            return parts[0]
        return SqlFragment(
            f"({parts[0].sql} OR {parts[1].sql})", (*parts[0].params, *parts[1].params)
        )

    def _match_each(
        self, path: tuple[str, ...], texts: list[str], other: list[tuple[str, Decimal | None]]
    ) -> SqlFragment:
        texts = list(dict.fromkeys(texts))
        conditions = [f"j.type = 'text' AND j.value {_in(texts)}"]
        params: list[object] = [*texts]
        numbers = list(dict.fromkeys(sqlite_number(n) for _, n in other if n is not None))
        if numbers:
            conditions.append(f"j.type IN ('integer', 'real') AND j.value {_in(numbers)}")
            params.extend(numbers)
        literals = list(dict.fromkeys(v for v, _ in other if v in _JSON_LITERALS))
        if literals:
            conditions.append(f"j.type {_in(literals)}")
            params.extend(literals)
        return self._each(path, " OR ".join(f"({c})" for c in conditions), tuple(params))

    def _contains_any(self, texts: list[str], condition: SqlFragment) -> SqlFragment:
        try:
            needles = list(dict.fromkeys(orjson.dumps(text) for text in texts))
        except orjson.JSONEncodeError:  # a lone surrogate: leave the condition as it is
            return condition
        if len(needles) > _MAX_NEEDLES:  # the byte checks would cost more than the parse
            return condition
        tests = " OR ".join(f"instr({self.stored}, ?) > 0" for _ in needles)
        if len(needles) > 1:
            tests = f"({tests})"
        return SqlFragment(f"({tests} AND {condition.sql})", (*needles, *condition.params))

    def json_prefix(self, path: tuple[str, ...], prefix: str) -> SqlFragment:
        each = self._each(path, "j.type = 'text' AND j.value GLOB ?", (glob_prefix(prefix),))
        return self._contains(prefix, each, whole=False)

    def _contains(self, text: str, condition: SqlFragment, *, whole: bool = True) -> SqlFragment:
        # A string's encoding is its characters' encodings in a row, so a body holding the
        # string (or one starting with the prefix: drop the closing quote) holds these bytes.
        try:
            encoded = orjson.dumps(text)
        except orjson.JSONEncodeError:  # a lone surrogate: leave the condition as it is
            return condition
        needle = encoded if whole else encoded[:-1]
        return SqlFragment(
            f"(instr({self.stored}, ?) > 0 AND {condition.sql})", (needle, *condition.params)
        )

    def json_compare(
        self, path: tuple[str, ...], op: str, value: str, number: Decimal | None
    ) -> SqlFragment:
        sql_op = _SQL_OPS[op]
        if number is None:
            return self._each(path, f"j.type = 'text' AND j.value {sql_op} ?", (value,))
        condition = f"j.type IN ('integer', 'real') AND j.value {sql_op} ?"
        return self._each(path, condition, (sqlite_number(number),))

    def json_exists(self, path: tuple[str, ...]) -> SqlFragment:
        return SqlFragment(f"json_type({self.body}, ?) <> 'null'", (sqlite_path(path),))

    def body_contains(
        self, text: str, ignore_case: bool, documented: bool = False
    ) -> SqlFragment | None:
        # orjson writes a string's characters as they are except ``"``, ``\\`` and control
        # characters: text free of those is in the body's bytes wherever a string holds it.
        # LIKE folds ASCII letters alone, as Contains does, and costs a sixth of lower().
        if not text or any(c in '"\\' or c < " " for c in text):
            return None
        if ignore_case:
            return SqlFragment(f"{self.body} LIKE ? ESCAPE '\\'", ("%" + like_prefix(text),))
        return SqlFragment(f"instr({self.body}, ?) > 0", (text,))

    def behind_screen(self) -> SqliteDialect:
        return self  # the body is read where a condition needs it, after the screen

    def screened(self, screen: SqlFragment, inner: SqlFragment) -> SqlFragment:
        return join((screen, inner), " AND ")


@dataclass(frozen=True, slots=True)
class PostgresDialect:
    """PostgreSQL: ``%s`` placeholders, a ``jsonb`` body searched with SQL/JSON path.

    Each JSON condition is ``jsonb_path_exists(body, %s::jsonpath, %s::jsonb)``: the path is
    built from quoted keys and the values travel in the ``vars`` object, so jsonpath's typed,
    lax-mode comparisons (array elements unwrapped, a string never equal to a number) give the
    same answers as the SQLite dialect.

    The default reads the ``BYTEA`` body column (UTF-8 JSON, as written) as ``jsonb``; a
    backend with a ``jsonb`` copy of it passes that column instead, which saves a parse per row.

    Attributes:
        body: the SQL expression of an event's body as ``jsonb``.
        full_text: the full-text strategy.
    """

    body: str = "convert_from(body, 'UTF8')::jsonb"
    full_text: FullText = field(default_factory=TsVector)
    row_key: str = "id"
    nulls_smallest: bool = False
    rollups: bool = False
    #: Migration 9's table (no facet rollups: only these).
    hour_totals: str = "(SELECT tenant_id, dim, value, hour AS period, n FROM hour_totals)"
    hour_dims: frozenset[tuple[str, ...]] = frozenset(PG_HOUR_DIMS.values())

    @property
    def typed(self) -> TypedSql:
        return PostgresJson(self.body)

    def events_from(self, *uses: str) -> str:
        if self.body != PARSED_BODY or not any(PARSED_BODY in sql for sql in uses):
            return "events"
        # The body parsed once per row, however many conditions read it; OFFSET 0 keeps the
        # planner from inlining the subquery (which would parse it again at every use).
        return (
            "events CROSS JOIN LATERAL (SELECT convert_from(events.body, 'UTF8')::jsonb"
            f" AS doc OFFSET 0) AS {PARSED_BODY.split('.')[0]}"
        )

    def compare(self, column: str, op: str, value: object) -> SqlFragment:
        bound = value.replace("\x00", "\ufffd") if isinstance(value, str) else value
        return SqlFragment(f"{column} {_SQL_OPS[op]} %s", (bound,))

    def prefix(self, column: str, prefix: str) -> SqlFragment:
        return SqlFragment(f"{column} LIKE %s ESCAPE '\\'", (like_prefix(prefix),))

    def _path(self, path: tuple[str, ...], condition: str, variables: str) -> SqlFragment:
        sql = f"jsonb_path_exists({self.body}, %s::jsonpath, %s::jsonb)"
        return SqlFragment(sql, (f"{jsonpath(path)} ? ({condition})", variables))

    def json_match(self, path: tuple[str, ...], value: str, number: Decimal | None) -> SqlFragment:
        return self.json_match_any(path, [(value, number)])

    def json_match_any(
        self, path: tuple[str, ...], values: Sequence[tuple[str, Decimal | None]]
    ) -> SqlFragment:
        conditions: list[str] = []
        variables: dict[str, str] = {}
        for i, (value, number) in enumerate(values):
            n = "" if len(values) == 1 else str(i)
            conditions.append(f"@ == $s{n}")
            variables[f"s{n}"] = json.dumps(value)
            if number is not None:
                conditions.append(f"@ == $n{n}")
                variables[f"n{n}"] = str(number)
            if value in _JSON_LITERALS:
                conditions.append(f"@ == $l{n}")
                variables[f"l{n}"] = value
        return self._path(path, " || ".join(conditions), _json_object(variables))

    def json_prefix(self, path: tuple[str, ...], prefix: str) -> SqlFragment:
        return self._path(path, "@ starts with $s", _json_object({"s": json.dumps(prefix)}))

    def json_compare(
        self, path: tuple[str, ...], op: str, value: str, number: Decimal | None
    ) -> SqlFragment:
        literal = json.dumps(value) if number is None else str(number)
        return self._path(path, f"@ {_SQL_OPS[op]} $v", _json_object({"v": literal}))

    def json_exists(self, path: tuple[str, ...]) -> SqlFragment:
        return SqlFragment(f"jsonb_typeof({self.body} #> %s) <> 'null'", (list(path),))

    def body_contains(
        self, text: str, ignore_case: bool, documented: bool = False
    ) -> SqlFragment | None:
        # As SQLite's: orjson writes a string's characters as they are (raw UTF-8) except
        # ``"``, ``\\`` and control characters. ILIKE under the "C" collation folds ASCII
        # letters alone, as Contains does (it lowers both sides with asc_tolower), and costs a
        # tenth of the parse (4 against 43 µs a row at 1M); LIKE on the bytes a fiftieth.
        if not text or any(c in '"\\' or c < " " for c in text):
            return None
        try:
            pattern = ("%" + like_prefix(text) + "%").encode()
        except UnicodeEncodeError:  # a lone surrogate: no body holds it, the parse says so
            return None
        if documented:
            # The search document's two columns hold each such string as a line of its own (a
            # NUL as U+FFFD, one character for one; ``verify database`` checks them against the
            # body): half the bytes of the body, no UTF-8 check, 1-1.5 µs a row against 3-4.
            # A row without them (none is written so) is left to the exact test.
            op = 'COLLATE "C" ILIKE' if ignore_case else 'COLLATE "C" LIKE'
            return SqlFragment(
                f"(search_fields IS NULL OR search_fields {op} %s OR search_message {op} %s)",
                (pattern.decode(), pattern.decode()),
            )
        if not ignore_case:
            return SqlFragment("body LIKE %s", (pattern,))
        return SqlFragment("convert_from(body, 'UTF8') COLLATE \"C\" ILIKE %s", (pattern.decode(),))

    def behind_screen(self) -> PostgresDialect:
        if self.body != PARSED_BODY:
            return self  # the body is parsed where a condition needs it, after the screen
        return replace(self, body=_SCREENED_BODY)

    def screened(self, screen: SqlFragment, inner: SqlFragment) -> SqlFragment:
        if self.body != PARSED_BODY:
            return join((screen, inner), " AND ")
        # The body parsed once for the conditions behind the screen, only for rows that pass
        # it: a scalar subquery is evaluated when its AND reaches it, where the statement's
        # own parse (``events_from``) would run for every row. OFFSET 0 keeps it a subquery.
        alias = _SCREENED_BODY.split(".")[0]
        sql = (
            f"({screen.sql} AND (SELECT {inner.sql} FROM (SELECT"  # noqa: S608
            f" convert_from(events.body, 'UTF8')::jsonb AS doc OFFSET 0) AS {alias}))"
        )
        return SqlFragment(sql, (*screen.params, *inner.params))


def sqlite_path(path: tuple[str, ...]) -> str:
    """A SQLite JSON path with every key quoted: ``$."metadata"."model"``."""
    return "$" + "".join(f'."{key}"' for key in path)


def jsonpath(path: tuple[str, ...]) -> str:
    """A PostgreSQL jsonpath with every key a JSON string literal: ``$."metadata"."model"``."""
    return "$" + "".join("." + json.dumps(key, ensure_ascii=False) for key in path)


def glob_prefix(prefix: str) -> str:
    """A GLOB pattern for strings starting with ``prefix``: its wildcards bracketed."""
    escaped = prefix.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
    return escaped + "*"


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (escape ``\\``) for strings starting with ``prefix``."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _in(values: Sequence[object]) -> str:
    """``= ?`` for one value, ``IN (?, ...)`` for more."""
    return "= ?" if len(values) == 1 else f"IN ({', '.join('?' * len(values))})"


def _json_object(members: dict[str, str]) -> str:
    """A JSON object from already-encoded member values."""
    return "{" + ", ".join(f'"{name}": {value}' for name, value in members.items()) + "}"


def sqlite_number(value: Decimal) -> int | float:
    """A number as SQLite binds it: an int when integral and 64-bit, else a float."""
    if value == value.to_integral_value() and abs(value) <= MAX_INT64:
        return int(value)
    return float(value)

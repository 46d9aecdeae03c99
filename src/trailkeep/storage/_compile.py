"""A query tree → a SQL condition for one backend, values always bound.

The result is a ``SqlFragment`` to AND into a WHERE clause beside the tenant filter (see
``storage._select``); it reads the ``events`` table's columns, its ``body`` and the
backend's full-text index (``_fulltext``). Every fragment is self-contained (parenthesized where
it combines), so it can be joined with ``AND`` as is. Search-language terms are spelled by the
dialect (``_dialects``), the typed nodes by its ``typed`` half (``_json_sql``).

Negation is two-valued: ``-actor.email:bob`` keeps events with no actor email at all, which
plain SQL ``NOT`` (NULL for a missing value) would drop, so ``Not`` compiles to
``(...) IS NOT TRUE``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Final, Literal, TypeAlias

from trailkeep.errors import InvalidInputError, TimeParseError
from trailkeep.model.timeparse import utcnow
from trailkeep.query.ast import (
    ELEMENT_NODES,
    And,
    Compare,
    Contains,
    Each,
    Exists,
    Node,
    Not,
    Or,
    Scalar,
    Term,
    Values,
)
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.fields import FieldError, FieldKind, FieldSpec, resolve
from trailkeep.query.fulltext import has_words, in_document
from trailkeep.query.parser import parse
from trailkeep.query.values import as_integer, as_number, as_time
from trailkeep.storage._dialects import (
    PARSED_BODY,
    Dialect,
    PostgresDialect,
    SqliteDialect,
    column_exists,
)
from trailkeep.storage._json_sql import Ref
from trailkeep.storage._sql import FALSE, TRUE, SqlFragment, join

__all__ = [
    "DIALECTS",
    "STORE_DIALECTS",
    "DialectName",
    "Location",
    "compile_node",
    "compile_query",
    "is_text",
    "locate",
]

DialectName: TypeAlias = Literal["sqlite", "postgres"]
#: The dialects by name, with their default table and column names.
DIALECTS: Final[Mapping[str, Dialect]] = {
    "sqlite": SqliteDialect(),
    "postgres": PostgresDialect(),
}
#: The dialects the stores run: PostgreSQL reads a body parsed once per row.
STORE_DIALECTS: Final[Mapping[str, Dialect]] = {
    "sqlite": SqliteDialect(),
    "postgres": PostgresDialect(body=PARSED_BODY),
}


def compile_query(
    text: str, dialect: DialectName | Dialect = "sqlite", *, now: datetime | None = None
) -> SqlFragment:
    """The SQL condition for a search query.

    Args:
        text: the query; a blank query is an error (callers treat a blank ``q`` as absent).
        dialect: ``"sqlite"`` (``?`` placeholders), ``"postgres"`` (``%s``), or a configured
            ``SqliteDialect``/``PostgresDialect``.
        now: the reference for relative times (``timestamp>now-1h``), an aware datetime;
            defaults to the clock.

    Raises:
        QuerySyntaxError: the query does not parse or validate.
    """
    return compile_node(parse(text), dialect, now=now)


def compile_node(
    node: Node, dialect: DialectName | Dialect = "sqlite", *, now: datetime | None = None
) -> SqlFragment:
    """The SQL condition for a tree from ``parse`` (or built by hand to the same rules).

    Raises:
        QuerySyntaxError: a term names an unknown field or holds a value its field cannot,
            at the term's position.
    """
    backend = DIALECTS[dialect] if isinstance(dialect, str) else dialect
    return _Compiler(backend, utcnow() if now is None else now).node(node)


class _Compiler:
    def __init__(self, dialect: Dialect, now: datetime) -> None:
        self.dialect = dialect
        self.now = now
        #: The texts a byte search of the body already holds to around what is compiling.
        self.screened: set[tuple[str, bool]] = set()

    def node(self, node: Node, element: bool = False) -> SqlFragment:
        if element and not isinstance(node, ELEMENT_NODES):
            raise InvalidInputError(f"{type(node).__name__} cannot test an array element")
        if not element and is_text(node):
            return self.dialect.full_text.match(node)
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Not):
            inner = self.node(node.child, element)
            return SqlFragment(f"(({inner.sql}) IS NOT TRUE)", inner.params)
        if isinstance(node, And | Or):
            if not node.children:
                return TRUE if isinstance(node, And) else FALSE
            if element:
                joiner = " AND " if isinstance(node, And) else " OR "
                return join((self.node(child, element) for child in node.children), joiner)
            return self.group(node)
        return self.typed(node, element)

    def typed(
        self, node: Values | Contains | Exists | Compare | Each, element: bool
    ) -> SqlFragment:
        """A node of the typed kinds, on a column where the field has one, else its JSON."""
        sql = self.dialect.typed
        if isinstance(node, Contains):
            return self.contains(node, element)
        where = locate(node.field, element)
        if isinstance(node, Each):
            if where.column is not None or where.ref is None:
                return FALSE  # a column holds a string, never an array
            return sql.each(where.ref, self.node(node.where, element=True))
        if isinstance(node, Exists):
            if where.column is not None:
                return column_exists(where.column)
            return FALSE if where.ref is None else sql.exists(where.ref)
        if isinstance(node, Compare):
            return self._compare(where, node)
        return self._values(where, node.values)

    def _values(self, where: Location, values: tuple[Scalar, ...]) -> SqlFragment:
        sql = self.dialect.typed
        if where.column is None:
            return FALSE if where.ref is None else sql.values(where.ref, values)
        if where.integer:  # seq: whole numbers only
            ints = [v for v in values if type(v) is int]
            return sql.column_values(where.column, ints) if ints else FALSE
        strs = [v for v in values if type(v) is str]
        others = [v for v in values if type(v) is not str]
        parts = [sql.column_values(where.column, strs)] if strs else []
        if others and where.ref is not None:  # the column holds strings only
            parts.append(sql.values(where.ref, others))
        if not parts:
            return FALSE
        return parts[0] if len(parts) == 1 else join(parts, " OR ")

    def contains(self, node: Contains, element: bool) -> SqlFragment:
        """Any of the fields contains the text: the columns' tests, then the body's fields
        behind one byte search of the body (``body_contains``), which skips reading them in
        every event whose body does not hold the text at all."""
        key = (node.text, node.ignore_case)
        in_body = [f for f in node.fields if element or _in_body(f)]
        screen = None
        if not element and key not in self.screened:
            screen = self.dialect.body_contains(*key, documented=all(map(_documented, in_body)))
        parts = [self._contains(f, node, element) for f in node.fields if f not in in_body]
        if in_body and screen is not None:
            parts.append(
                self._behind(
                    screen,
                    lambda: join((self._contains(f, node, element) for f in in_body), " OR "),
                )
            )
        else:
            parts.extend(self._contains(f, node, element) for f in in_body)
        return join(parts, " OR ") if parts else FALSE

    def _behind(self, screen: SqlFragment, build: Callable[[], SqlFragment]) -> SqlFragment:
        """What ``build`` compiles, read only for rows that pass ``screen``."""
        outer = self.dialect
        self.dialect = outer.behind_screen()
        try:
            inner = build()
        finally:
            self.dialect = outer
        return outer.screened(screen, inner)

    def _contains(self, field: tuple[str, ...], node: Contains, element: bool) -> SqlFragment:
        where = locate(field, element)
        if where.column is not None and not where.integer:
            return self.dialect.typed.column_contains(where.column, node.text, node.ignore_case)
        if where.ref is None:
            return FALSE
        return self.dialect.typed.contains(where.ref, node.text, node.ignore_case)

    def _compare(self, where: Location, node: Compare) -> SqlFragment:
        if where.column is not None:
            if (type(node.value) is int) == where.integer:
                return self.dialect.compare(where.column, node.op, node.value)
            if type(node.value) is str or where.ref is None:
                return FALSE
        if where.ref is None:
            return FALSE
        return self.dialect.typed.compare(where.ref, node.op, node.value)

    def group(self, node: And | Or, *, screen: bool = True) -> SqlFragment:
        """Children joined; its text terms merged into one full-text match, in first's place,
        and (under Or) its JSON equality terms on one path into one match, in first's place,
        so the body is parsed once per path rather than once per term."""
        if isinstance(node, Or) and screen:
            screened = self._screened_or(node)
            if screened is not None:
                return screened
        text = tuple(child for child in node.children if is_text(child))
        matches = _json_matches(node.children) if isinstance(node, Or) else {}
        parts: list[SqlFragment] = []
        for child in node.children:
            path = _json_match_path(child) if matches else None
            if path is not None and path in matches:
                if matches[path]:
                    parts.append(self.dialect.json_match_any(path, matches.pop(path)))
                    matches[path] = []
            elif not is_text(child):
                parts.append(self.node(child))
            elif text:
                group = text[0] if len(text) == 1 else type(node)(text)
                parts.append(self.dialect.full_text.match(group))
                text = ()
        joiner = " AND " if isinstance(node, And) else " OR "
        return SqlFragment(
            "(" + joiner.join(p.sql for p in parts) + ")",
            tuple(param for p in parts for param in p.params),
        )

    def _screened_or(self, node: Or) -> SqlFragment | None:
        """An Or with several branches that each need the same text in the body (``Contains``
        of body fields, alone or ANDed): those branches behind one byte search of the body,
        in the first one's place, so a row without the text costs one search rather than one
        per branch. None when no two branches share a text (the Or is compiled as it is)."""
        children: list[Node] = []
        for child in _flat_or(node):  # a Contains of columns and body fields: two branches
            if isinstance(child, Contains):
                outside = tuple(f for f in child.fields if not _in_body(f))
                in_body = tuple(f for f in child.fields if _in_body(f))
                if outside and in_body:
                    children.append(Contains(outside, child.text, child.ignore_case))
                    children.append(Contains(in_body, child.text, child.ignore_case))
                    continue
            children.append(child)
        needs = [_body_text(child) for child in children]
        shared = [key for key in dict.fromkeys(needs) if key is not None and needs.count(key) > 1]
        screens = {
            key: self.dialect.body_contains(
                *key,
                documented=all(
                    _all_documented(child)
                    for k, child in zip(needs, children, strict=True)
                    if k == key
                ),
            )
            for key in shared
            if key not in self.screened
        }
        screens = {key: screen for key, screen in screens.items() if screen is not None}
        if not screens:
            return None
        parts: list[SqlFragment] = []
        grouping = set(screens)
        for key, child in zip(needs, children, strict=True):
            if key is None or key not in grouping:
                parts.append(self.node(child))
                continue
            screen = screens.pop(key, None)
            if screen is not None:  # the group, in its first branch's place
                grouped = [c for k, c in zip(needs, children, strict=True) if k == key]
                self.screened.add(key)
                try:
                    if len(grouped) > 1:
                        build = partial(self.group, Or(tuple(grouped)), screen=False)
                    else:
                        build = partial(self.node, grouped[0])
                    parts.append(self._behind(screen, build))
                finally:
                    self.screened.discard(key)
        return join(parts, " OR ")

    def term(self, term: Term) -> SqlFragment:
        if term.field is None:
            return FALSE  # a word with no letters or digits matches no indexed word
        try:
            spec = resolve(term.field)
        except FieldError as exc:
            raise QuerySyntaxError(term.position, str(exc)) from None
        if term.op == ":" and term.prefix and not term.value:
            return self._exists(spec)
        if spec.kind is FieldKind.FULL_TEXT:
            return FALSE
        if spec.kind is FieldKind.JSON:
            return self._json(spec, term)
        column = _column(spec)
        if term.op == ":" and term.prefix:
            return self.dialect.prefix(column, term.value)
        return self.dialect.compare(column, term.op, self._column_value(spec, term))

    def _exists(self, spec: FieldSpec) -> SqlFragment:
        if spec.kind in (FieldKind.JSON, FieldKind.FULL_TEXT):
            return self.dialect.json_exists(spec.path)
        return column_exists(_column(spec))

    def _json(self, spec: FieldSpec, term: Term) -> SqlFragment:
        number = as_number(term.value)
        if term.op != ":":
            return self.dialect.json_compare(spec.path, term.op, term.value, number)
        if term.prefix:
            return self.dialect.json_prefix(spec.path, term.value)
        return self.dialect.json_match(spec.path, term.value, number)

    def _column_value(self, spec: FieldSpec, term: Term) -> object:
        if spec.kind is FieldKind.INTEGER:
            value = as_integer(term.value)
            if value is None:
                raise QuerySyntaxError(term.position, f"'{spec.name}' needs a whole number")
            return value
        if spec.kind is FieldKind.TIME:
            try:
                instant = as_time(term.value, param=spec.name, now=self.now)
            except TimeParseError as exc:
                raise QuerySyntaxError(term.position, exc.message) from None
            if instant is None:
                raise QuerySyntaxError(term.position, f"'{spec.name}' needs a time")
            return instant
        return term.value


def _json_match_path(node: Node) -> tuple[str, ...] | None:
    """The JSON path of an equality search term (``metadata.k:v``), else None."""
    if not isinstance(node, Term) or node.field is None or node.op != ":" or node.prefix:
        return None
    if is_text(node):
        return None
    try:
        spec = resolve(node.field)
    except FieldError:
        return None  # compiled alone, to raise at its position
    return spec.path if spec.kind is FieldKind.JSON and spec.path else None


def _json_matches(
    children: tuple[Node, ...],
) -> dict[tuple[str, ...], list[tuple[str, Decimal | None]]]:
    """The values of OR'ed equality terms per JSON path, for paths with more than one."""
    found: dict[tuple[str, ...], list[tuple[str, Decimal | None]]] = {}
    for child in children:
        path = _json_match_path(child)
        if path is not None:
            assert isinstance(child, Term)
            found.setdefault(path, []).append((child.value, as_number(child.value)))
    return {path: values for path, values in found.items() if len(values) > 1}


def _flat_or(node: Or) -> list[Node]:
    """The branches of ``node`` with those of nested Ors in their place."""
    out: list[Node] = []
    for child in node.children:
        out.extend(_flat_or(child) if isinstance(child, Or) else [child])
    return out


def _in_body(field: tuple[str, ...]) -> bool:
    """Whether the strings ``field`` holds are in the event body: every field but ``id``,
    ``seq`` and ``received_at`` (a column holds the body's string, as ``verify database``
    checks), so a body without a text has no such string containing it."""
    return locate(field).ref is not None


def _documented(field: tuple[str, ...]) -> bool:
    """Whether every string ``field`` holds in the body is a line of the search document."""
    ref = locate(field).ref
    return ref is not None and in_document(ref.path)


def _all_documented(node: Node) -> bool:
    """Whether every ``Contains`` in ``node`` reads only fields the search document holds."""
    if isinstance(node, Contains):
        return all(map(_documented, node.fields))
    if isinstance(node, And | Or):
        return all(map(_all_documented, node.children))
    if isinstance(node, Not):
        return _all_documented(node.child)
    return True


def _body_text(node: Node) -> tuple[str, bool] | None:
    """The text (and whether case is ignored) that the body must hold for ``node`` to match:
    a ``Contains`` of body fields needs its text; an And what any child needs; an Or what
    every child needs. None when there is no such text."""
    if isinstance(node, Contains):
        if not node.fields or not all(_in_body(field) for field in node.fields):
            return None
        return (node.text, node.ignore_case)
    if isinstance(node, And):
        return next((k for k in map(_body_text, node.children) if k is not None), None)
    if isinstance(node, Or) and node.children:
        keys = {_body_text(child) for child in node.children}
        return keys.pop() if len(keys) == 1 else None
    return None


@dataclass(frozen=True, slots=True)
class Location:
    """Where a field's values are: a string column (``integer`` for ``seq``), and the JSON
    value (``ref``) for what the column cannot hold; either may be None."""

    column: str | None
    ref: Ref | None
    integer: bool = False


#: Column fields whose value is not in the event body.
_NOT_IN_BODY: Final = frozenset({"id", "seq", "received_at"})


def locate(field: tuple[str, ...], element: bool = False) -> Location:
    """Where ``field`` lives (a path relative to an array element when ``element``).

    Raises:
        InvalidInputError: the field is no field of an event.
    """
    if element:
        return Location(None, Ref(field, element=True))
    try:
        spec = resolve(field)
    except FieldError as exc:
        raise InvalidInputError(str(exc)) from None
    if spec.column is None:
        return Location(None, Ref(spec.path or field))
    if spec.name in _NOT_IN_BODY:
        return Location(spec.column, None, integer=spec.kind is FieldKind.INTEGER)
    path = ("timestamp",) if spec.column == "ts" else tuple(spec.name.split("."))
    return Location(spec.column, Ref(path))


def _column(spec: FieldSpec) -> str:
    if spec.column is None:
        raise TypeError(f"{spec.name} has no column")
    return spec.column


def is_text(node: Node) -> bool:
    """Whether the full-text index alone answers ``node``: text terms under And/Or only."""
    if isinstance(node, Term):
        if node.op != ":" or not has_words(node.value):
            return False
        return node.field is None or node.field == ("message",)
    if isinstance(node, And | Or):
        return bool(node.children) and all(is_text(child) for child in node.children)
    return False

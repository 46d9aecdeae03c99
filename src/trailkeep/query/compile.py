"""Search-language text or trees → a SQL condition for one backend, values always bound.

The result is a ``SqlFragment`` to AND into a WHERE clause beside the tenant filter (see
``filters.where_clause``); it reads the ``events`` table's columns, its ``body`` and the
backend's full-text index (``fulltext``). Every fragment is self-contained (parenthesized where
it combines), so it can be joined with ``AND`` as is.

Negation is two-valued: ``-actor.email:bob`` keeps events with no actor email at all, which
plain SQL ``NOT`` (NULL for a missing value) would drop, so ``Not`` compiles to
``(...) IS NOT TRUE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final, Literal, TypeAlias

from trailkeep.errors import TimeParseError
from trailkeep.model.timeparse import utcnow
from trailkeep.query.ast import And, Node, Not, Or, Term
from trailkeep.query.dialects import FALSE, Dialect, PostgresDialect, SqliteDialect, column_exists
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.fields import FieldError, FieldKind, FieldSpec, resolve
from trailkeep.query.filters import SqlFragment
from trailkeep.query.fulltext import has_words
from trailkeep.query.parser import parse
from trailkeep.query.values import as_integer, as_number, as_time

__all__ = ["DIALECTS", "DialectName", "compile_node", "compile_query"]

DialectName: TypeAlias = Literal["sqlite", "postgres"]
#: The dialects by name, with their default table and column names.
DIALECTS: Final[Mapping[str, Dialect]] = {
    "sqlite": SqliteDialect(),
    "postgres": PostgresDialect(),
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

    def node(self, node: Node) -> SqlFragment:
        if _is_text(node):
            return self.dialect.full_text.match(node)
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Not):
            inner = self.node(node.child)
            return SqlFragment(f"(({inner.sql}) IS NOT TRUE)", inner.params)
        return self.group(node)

    def group(self, node: And | Or) -> SqlFragment:
        """Children joined; its text terms merged into one full-text match, in first's place."""
        text = tuple(child for child in node.children if _is_text(child))
        parts: list[SqlFragment] = []
        for child in node.children:
            if not _is_text(child):
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


def _column(spec: FieldSpec) -> str:
    if spec.column is None:
        raise TypeError(f"{spec.name} has no column")
    return spec.column


def _is_text(node: Node) -> bool:
    """Whether the full-text index alone answers ``node``: text terms under And/Or only."""
    if isinstance(node, Term):
        if node.op != ":" or not has_words(node.value):
            return False
        return node.field is None or node.field == ("message",)
    if isinstance(node, Not):
        return False
    return all(_is_text(child) for child in node.children)

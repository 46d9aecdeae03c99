"""Full-text SQL: how each backend matches a group of text terms (``query.fulltext`` says
what is indexed).

* ``Fts5`` (SQLite): ``events.rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)``
  with an FTS5 query in which every word is a quoted string, so nothing the user types is FTS5
  syntax (``NEAR``, ``*``, ``^``, ``-``, ``:`` are all just text inside quotes).
* ``TsVector`` (PostgreSQL): ``search_vector @@ phraseto_tsquery('simple', %s)``; a prefix is
  ``to_tsquery('simple', %s)`` over one quoted lexeme with ``:*``, escaped so it is never
  operator syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Protocol

from trailkeep.query.ast import And, Node, Or, Term, terms
from trailkeep.storage._sql import SqlFragment

__all__ = [
    "FTS_COLUMNS",
    "FTS_TABLE",
    "SEARCH_VECTOR",
    "TS_CONFIG",
    "Fts5",
    "FullText",
    "TsVector",
    "fts5_phrase",
    "tsquery_prefix",
]

#: The SQLite FTS5 table, keyed by ``rowid`` = ``events.rowid``.
FTS_TABLE: Final = "events_fts"
#: Its columns, in order: the message, then every other value of the event.
FTS_COLUMNS: Final = ("message", "fields")
#: The PostgreSQL ``tsvector`` column on ``events``: message at weight A, the rest at B.
SEARCH_VECTOR: Final = "search_vector"
#: The PostgreSQL text-search configuration: no stemming and no stop words, like FTS5's
#: ``unicode61``, so a word matches the same events on either backend.
TS_CONFIG: Final = "simple"


_CONFIG_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def fts5_phrase(term: Term) -> str:
    """An FTS5 query for one text term: a quoted string, ``*`` for a prefix, a column filter."""
    quoted = '"' + term.value.replace('"', '""') + '"' + (" *" if term.prefix else "")
    return quoted if term.field is None else f"{FTS_COLUMNS[0]} : {quoted}"


def tsquery_prefix(value: str) -> str:
    """``to_tsquery`` input matching words that start with ``value``: one escaped lexeme."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "':*"


class FullText(Protocol):
    """How a backend matches a group of text terms.

    ``match`` receives a ``Term`` or an ``And``/``Or`` of such groups, where every term is
    free text or ``message:``, uses ``:``, and has words (``has_words``); never a ``Not``.
    """

    def match(self, node: Node) -> SqlFragment: ...


@dataclass(frozen=True, slots=True)
class Fts5:
    """SQLite FTS5 over ``FTS_TABLE``, joined to the events by rowid.

    Attributes:
        table: the FTS5 table.
        key: the outer query's expression for the events row id it matches against.
    """

    table: str = FTS_TABLE
    key: str = "events.rowid"

    def match(self, node: Node) -> SqlFragment:
        # The names are configuration, never user input; the FTS5 query itself is bound.
        key, table = self.key, self.table
        sql = f"{key} IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)"  # noqa: S608
        return SqlFragment(sql, (self.expression(node),))

    def expression(self, node: Node) -> str:
        """The FTS5 query string for ``node``."""
        if isinstance(node, Term):
            return fts5_phrase(node)
        if not isinstance(node, And | Or):
            raise TypeError(f"FTS5 groups hold text terms only, not {type(node).__name__}")
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(self.expression(child) for child in node.children) + ")"


@dataclass(frozen=True, slots=True)
class TsVector:
    """PostgreSQL full text over a weighted ``tsvector`` column.

    ``message:`` terms read only the message's lexemes through ``ts_filter`` on weight A, so the
    one indexed column serves both kinds of term.

    Attributes:
        column: the ``tsvector`` column (``setweight(message, 'A') || setweight(fields, 'B')``).
        config: the text-search configuration the column was built with.
    """

    column: str = SEARCH_VECTOR
    config: str = TS_CONFIG

    def __post_init__(self) -> None:
        if not _CONFIG_NAME.fullmatch(self.config):  # it is written inside a SQL string literal
            raise ValueError(f"not a text-search configuration name: {self.config!r}")

    def match(self, node: Node) -> SqlFragment:
        scope = _scope(node)
        if scope is None:  # free text and message: mixed; each side keeps its own vector
            if not isinstance(node, And | Or):
                raise TypeError(f"cannot match {node!r}")
            parts = [self.match(child) for child in node.children]
            joiner = " AND " if isinstance(node, And) else " OR "
            return SqlFragment(
                "(" + joiner.join(p.sql for p in parts) + ")",
                tuple(param for p in parts for param in p.params),
            )
        vector = self.column if scope == "all" else f"ts_filter({self.column}, '{{a}}')"
        query, params = self._query(node)
        return SqlFragment(f"{vector} @@ {query}", params)

    def _query(self, node: Node) -> tuple[str, tuple[object, ...]]:
        if isinstance(node, Term):
            if node.prefix:
                return f"to_tsquery('{self.config}', %s)", (tsquery_prefix(node.value),)
            return f"phraseto_tsquery('{self.config}', %s)", (node.value,)
        if not isinstance(node, And | Or):
            raise TypeError(f"tsquery groups hold text terms only, not {type(node).__name__}")
        parts = [self._query(child) for child in node.children]
        joiner = " && " if isinstance(node, And) else " || "
        sql = "(" + joiner.join(sql for sql, _ in parts) + ")"
        return sql, tuple(param for _, params in parts for param in params)


def _scope(node: Node) -> str | None:
    """``"all"`` when every term is free text, ``"message"`` when every one is ``message:``."""
    scopes = {"all" if term.field is None else "message" for term in terms(node)}
    return scopes.pop() if len(scopes) == 1 else None

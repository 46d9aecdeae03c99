"""Queries run on a real SQLite database (events table + FTS5) find exactly the expected events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings

from tests.query.corpus import CASES, EVENTS, NOW, ids
from tests.query.sqlite_db import build_database, matching_ids
from tests.query.strategies import query_texts, trees
from trailkeep.query.ast import Node
from trailkeep.query.compile import compile_node, compile_query
from trailkeep.query.errors import QuerySyntaxError

#: Another tenant holding a copy of every event: the fragment must never reach it.
OTHER_TENANT = [dict(event, id="other-" + event["id"]) for event in EVENTS]


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = build_database({"acme": EVENTS, "other": OTHER_TENANT})
    yield conn
    conn.close()


def found(db: sqlite3.Connection, query: str) -> set[str]:
    return matching_ids(db, "acme", compile_query(query, "sqlite", now=NOW))


class TestCorpus:
    """Each query of the shared corpus finds exactly its events, and only in its tenant."""

    @pytest.mark.parametrize(("query", "expected"), CASES)
    def test_query(self, db: sqlite3.Connection, query: str, expected: set[str]) -> None:
        assert found(db, query) == expected


class TestSqliteTokenizer:
    """Answers that follow from FTS5's unicode61 tokenizer (PostgreSQL's parser differs)."""

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            pytest.param("bob", ids(2, 4), id="email-parts-are-words"),
            pytest.param("cafe", ids(17), id="diacritics-removed"),
            pytest.param("CAFÉ", ids(17), id="unicode-case-folded"),
            pytest.param("document", ids(3, 4, 20), id="dotted-action-parts-are-words"),
            pytest.param("message:caf*", ids(17), id="message-prefix"),
        ],
    )
    def test_query(self, db: sqlite3.Connection, query: str, expected: set[str]) -> None:
        assert found(db, query) == expected


class TestAnyQueryRuns:
    """Whatever the query, the compiled SQL runs: no FTS5 or JSON path syntax errors."""

    @settings(max_examples=150)
    @given(tree=trees)
    def test_trees(self, db: sqlite3.Connection, tree: Node) -> None:
        matching_ids(db, "acme", compile_node(tree, "sqlite", now=NOW))

    @settings(max_examples=150)
    @given(text=query_texts)
    def test_text(self, db: sqlite3.Connection, text: str) -> None:
        try:
            fragment = compile_query(text, "sqlite", now=NOW)
        except QuerySyntaxError:
            return
        assert matching_ids(db, "acme", fragment) <= {event["id"] for event in EVENTS}

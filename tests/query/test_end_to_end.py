"""Queries run on a real SQLite database (events table + FTS5) find exactly the expected events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.query.corpus import CASES, EVENTS, NOW, ids
from tests.query.sqlite_db import build_database, matching_ids
from tests.query.strategies import query_texts, trees
from trailkeep.query.ast import Node, Term
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.storage._compile import compile_node, compile_query
from trailkeep.storage._dialects import SqliteDialect
from trailkeep.storage._sql import SqlFragment

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


class _Unchecked(SqliteDialect):
    """The SQLite dialect without the ``instr`` pre-check on the stored bytes."""

    def _contains(self, text: str, condition: SqlFragment, *, whole: bool = True) -> SqlFragment:
        return condition


_BASE = {"timestamp": "2026-11-20T00:00:00.000000Z", "action": "a", "outcome": "success"}
_strings = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from('"\\/\x7fé€😀'))
_scalars = (
    _strings
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_strings, inner, max_size=3),
)


class TestStoredBytesPreCheck:
    """The ``instr`` pre-check of JSON matches and prefixes never drops a match."""

    @settings(max_examples=200)
    @given(values=st.lists(_json, min_size=1, max_size=6), data=st.data())
    def test_same_events_as_without_it(self, values: list[object], data: st.DataObject) -> None:
        events = [{"id": f"e{n}", **_BASE, "metadata": {"v": v}} for n, v in enumerate(values)]
        texts = [v for v in values if isinstance(v, str)]
        texts += [x for v in values if isinstance(v, list) for x in v if isinstance(x, str)]
        value = data.draw(st.sampled_from(texts) | _strings if texts else _strings)
        cut = data.draw(st.integers(1, max(1, len(value))))
        terms = [Term(("metadata", "v"), ":", value)]
        if value:
            terms.append(Term(("metadata", "v"), ":", value[:cut], prefix=True))
        db = build_database({"acme": events})
        try:
            for term in terms:
                checked = matching_ids(db, "acme", compile_node(term, "sqlite", now=NOW))
                unchecked = matching_ids(db, "acme", compile_node(term, _Unchecked(), now=NOW))
                assert checked == unchecked, term
        finally:
            db.close()

    def test_finds_escaped_and_non_ascii_values(self) -> None:
        events = [
            {
                "id": "e1",
                **_BASE,
                "metadata": {"v": ['a"b\\é', "x"]},
            }
        ]
        db = build_database({"acme": events})
        try:
            assert found(db, 'metadata.v:"a\\"b\\\\é"') == {"e1"}
            assert found(db, 'metadata.v:"a\\"b"*') == {"e1"}
            assert found(db, "metadata.v:y") == set()
        finally:
            db.close()

    def test_value_without_json_encoding_is_not_pre_checked(self) -> None:
        term = Term(("metadata", "v"), ":", "\ud800")  # the parser refuses it; a caller may not
        assert "instr" not in compile_node(term, "sqlite", now=NOW).sql

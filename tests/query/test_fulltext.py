"""Full text: what gets indexed for an event, and how one text term is quoted for each engine."""

from __future__ import annotations

from typing import Any

import pytest

from trailkeep.query.ast import Term
from trailkeep.query.fulltext import SearchDocument, has_words, search_document
from trailkeep.storage._fulltext import fts5_phrase, tsquery_prefix


class TestSearchDocument:
    """The message apart; every other string and number in document order; no keys, no noise."""

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            pytest.param(
                {
                    "action": "login",
                    "timestamp": "2026-11-23T10:00:00.000000Z",
                    "message": "Hello",
                    "actor": {"id": "u1", "email": "a@b.c"},
                    "metadata": {"n": 5, "f": 1.5, "ok": True, "none": None, "tags": ["x", 2]},
                    "signature": {"alg": "ed25519", "sig": "AAAA"},
                },
                SearchDocument("Hello", "login\nu1\na@b.c\n5\n1.5\nx\n2"),
                id="typical",
            ),
            pytest.param({"action": "a"}, SearchDocument("", "a"), id="no-message"),
            pytest.param(
                {"action": "a", "message": {"redacted": True}},
                SearchDocument("", "a"),
                id="redacted-message",
            ),
            pytest.param(
                {"action": "a", "old": {"s": "x"}, "new": {"s": "y"}},
                SearchDocument("", "a\nx\ny"),
                id="old-and-new",
            ),
        ],
    )
    def test_document(self, content: dict[str, Any], expected: SearchDocument) -> None:
        assert search_document(content) == expected


class TestQuoting:
    """Every user word is one quoted string, so no FTS5 or tsquery syntax survives."""

    @pytest.mark.parametrize(
        ("term", "expected"),
        [
            pytest.param(Term(None, ":", "word"), '"word"', id="word"),
            pytest.param(Term(None, ":", 'a"b'), '"a""b"', id="quote-doubled"),
            pytest.param(Term(None, ":", "NEAR(a b)"), '"NEAR(a b)"', id="near"),
            pytest.param(Term(None, ":", "^a*"), '"^a*"', id="caret-star"),
            pytest.param(Term(None, ":", "ab", prefix=True), '"ab" *', id="prefix"),
            pytest.param(Term(("message",), ":", "x"), 'message : "x"', id="column-filter"),
        ],
    )
    def test_fts5(self, term: Term, expected: str) -> None:
        assert fts5_phrase(term) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("ab", "'ab':*", id="plain"),
            pytest.param("it's", "'it''s':*", id="quote"),
            pytest.param("a\\", "'a\\\\':*", id="backslash"),
            pytest.param("a & !b | c:*", "'a & !b | c:*':*", id="operators-inside-quotes"),
        ],
    )
    def test_tsquery_prefix(self, value: str, expected: str) -> None:
        assert tsquery_prefix(value) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("a", True, id="letter"),
            pytest.param("7", True, id="digit"),
            pytest.param("é", True, id="accented"),
            pytest.param("-- ^*", False, id="punctuation"),
            pytest.param("²½", False, id="other-numerals"),
            pytest.param("", False, id="empty"),
        ],
    )
    def test_has_words(self, text: str, expected: bool) -> None:
        assert has_words(text) is expected

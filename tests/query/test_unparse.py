"""Unparsing: the text written for a tree parses back to the same tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tests.query.strategies import query_texts, trees
from trailkeep.query.ast import Node
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.parser import parse
from trailkeep.query.unparse import unparse


class TestUnparse:
    """Canonical text: minimal parentheses, escapes only where the lexer needs them."""

    @pytest.mark.parametrize(
        ("text", "canonical"),
        [
            pytest.param("a  AND b", "a b", id="and-is-implicit"),
            pytest.param("NOT a", "-a", id="not-is-a-dash"),
            pytest.param("(a OR b) c", "(a OR b) c", id="or-inside-and"),
            pytest.param("a OR (b c)", "a OR b c", id="and-inside-or-needs-none"),
            pytest.param("a (b c)", "a (b c)", id="nested-and-kept"),
            pytest.param("NOT (a b)", "-(a b)", id="not-group"),
            pytest.param('"a \\"b\\" \\\\"*', '"a \\"b\\" \\\\"*', id="phrase-escapes"),
            pytest.param("\\-x \\AND a\\:b", "\\-x \\AND a\\:b", id="word-escapes"),
            pytest.param("a\\*", "a\\*", id="literal-star"),
            pytest.param('metadata."a b".c:x\\ y', 'metadata."a b".c:x\\ y', id="quoted-key"),
            pytest.param(
                "timestamp>2026-11-01T10:00:00Z", "timestamp>2026-11-01T10:00:00Z", id="time"
            ),
            pytest.param("action:*", "action:*", id="exists"),
        ],
    )
    def test_canonical(self, text: str, canonical: str) -> None:
        assert unparse(parse(text)) == canonical


class TestRoundTrip:
    """parse(unparse(tree)) == tree for every tree parse can return."""

    @settings(max_examples=300)
    @given(trees)
    def test_trees(self, tree: Node) -> None:
        assert parse(unparse(tree)) == tree

    @settings(max_examples=300)
    @given(query_texts)
    def test_parsed_text(self, text: str) -> None:
        try:
            tree = parse(text)
        except QuerySyntaxError:
            return
        assert parse(unparse(tree)) == tree

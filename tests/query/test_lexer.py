"""The lexer: where terms start and end, escapes, prefixes, and its own errors."""

from __future__ import annotations

import pytest

from trailkeep.query.ast import Term
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.lexer import Kind, Token, tokenize


def _kinds(text: str) -> list[str]:
    return [token.text if token.kind is not Kind.TERM else "T" for token in tokenize(text)]


def _term(text: str) -> Term:
    (token,) = tokenize(text)
    assert token.term is not None
    return token.term


class TestTokens:
    """Whitespace separates tokens; parentheses, dashes and upper-case keywords are operators."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("a b", ["T", "T"], id="words"),
            pytest.param("  a\t\nb  ", ["T", "T"], id="any-whitespace"),
            pytest.param("(a)", ["(", "T", ")"], id="parentheses-need-no-space"),
            pytest.param("a AND b OR NOT c", ["T", "AND", "T", "OR", "NOT", "T"], id="keywords"),
            pytest.param("a and b or not c", ["T"] * 6, id="lower-case-keywords-are-words"),
            pytest.param("-a", ["-", "T"], id="dash-negates"),
            pytest.param("--a", ["-", "-", "T"], id="double-dash"),
            pytest.param("a-b", ["T"], id="dash-inside-a-word"),
            pytest.param('-"a b"', ["-", "T"], id="dash-before-phrase"),
            pytest.param("-(a)", ["-", "(", "T", ")"], id="dash-before-group"),
            pytest.param('a"b c"d', ["T", "T", "T"], id="quote-starts-a-new-term"),
            pytest.param("NOT(a)", ["NOT", "(", "T", ")"], id="keyword-before-parenthesis"),
            pytest.param("ANDROID", ["T"], id="keyword-prefix-is-a-word"),
            pytest.param("\\AND", ["T"], id="escaped-keyword-is-a-word"),
            pytest.param("actor.email:a)b", ["T", ")", "T"], id="parenthesis-ends-a-value"),
            pytest.param("", [], id="empty"),
        ],
    )
    def test_kinds(self, text: str, expected: list[str]) -> None:
        assert _kinds(text) == expected

    def test_positions_and_text(self) -> None:
        tokens = tokenize('ab  (-"c d"* x:y')
        assert [(t.position, t.text) for t in tokens] == [
            (0, "ab"),
            (4, "("),
            (5, "-"),
            (6, '"c d"*'),
            (13, "x:y"),
        ]


class TestTerms:
    """A term is lexed whole: its field path, operator, unescaped value and prefix star."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("hello", Term(None, ":", "hello"), id="word"),
            pytest.param('"a b"', Term(None, ":", "a b", phrase=True), id="phrase"),
            pytest.param("ab*", Term(None, ":", "ab", prefix=True), id="prefix"),
            pytest.param(
                '"a b"*', Term(None, ":", "a b", phrase=True, prefix=True), id="phrase-prefix"
            ),
            pytest.param("a*b", Term(None, ":", "a*b"), id="inner-star-is-literal"),
            pytest.param("a\\*", Term(None, ":", "a*"), id="escaped-star"),
            pytest.param("a**", Term(None, ":", "a*", prefix=True), id="last-star-is-prefix"),
            pytest.param("a\\ b", Term(None, ":", "a b"), id="escaped-space"),
            pytest.param("x\\:y", Term(None, ":", "x:y"), id="escaped-colon-is-free-text"),
            pytest.param("a\\", Term(None, ":", "a\\"), id="trailing-backslash-is-literal"),
            pytest.param('"a\\"b"', Term(None, ":", 'a"b', phrase=True), id="escaped-quote"),
            pytest.param('"a\\\\b"', Term(None, ":", "a\\b", phrase=True), id="escaped-backslash"),
            pytest.param(
                '"C:\\Users"', Term(None, ":", "C:\\Users", phrase=True), id="other-backslash"
            ),
            pytest.param("10:30", Term(None, ":", "10:30"), id="digits-are-no-field"),
            pytest.param("a=b", Term(None, ":", "a=b"), id="equals-is-no-operator"),
            pytest.param(
                "actor.email:bob@x.io", Term(("actor", "email"), ":", "bob@x.io"), id="field"
            ),
            pytest.param(
                'actor.name:"Bob Smith"',
                Term(("actor", "name"), ":", "Bob Smith", phrase=True),
                id="field-phrase",
            ),
            pytest.param(
                "action:doc*", Term(("action",), ":", "doc", prefix=True), id="field-prefix"
            ),
            pytest.param("action:*", Term(("action",), ":", "", prefix=True), id="field-exists"),
            pytest.param("seq>=5", Term(("seq",), ">=", "5"), id="at-least"),
            pytest.param("seq<=5", Term(("seq",), "<=", "5"), id="at-most"),
            pytest.param("seq>5", Term(("seq",), ">", "5"), id="greater"),
            pytest.param("seq<5", Term(("seq",), "<", "5"), id="less"),
            pytest.param(
                "timestamp>2026-11-01T10:00:00Z",
                Term(("timestamp",), ">", "2026-11-01T10:00:00Z"),
                id="colons-inside-a-value",
            ),
            pytest.param("action:-x", Term(("action",), ":", "-x"), id="dash-inside-a-value"),
            pytest.param("action:OR", Term(("action",), ":", "OR"), id="keyword-as-a-value"),
            pytest.param(
                'metadata."user agent".os:linux',
                Term(("metadata", "user agent", "os"), ":", "linux"),
                id="quoted-key",
            ),
            pytest.param(
                'metadata."a\\"b":x', Term(("metadata", 'a"b'), ":", "x"), id="escaped-quote-in-key"
            ),
            pytest.param(
                "metadata.x-request-id:1",
                Term(("metadata", "x-request-id"), ":", "1"),
                id="dashes-in-keys",
            ),
            pytest.param("http://x.io", Term(("http",), ":", "//x.io"), id="url-is-a-field"),
        ],
    )
    def test_term(self, text: str, expected: Term) -> None:
        assert _term(text) == expected

    def test_field_term_records_where_its_parts_are(self) -> None:
        (token,) = tokenize('  metadata."a b":x')
        assert token == Token(
            Kind.TERM,
            2,
            'metadata."a b":x',
            Term(("metadata", "a b"), ":", "x"),
            field_text='metadata."a b"',
            value_position=17,
        )


class TestLexerErrors:
    """The lexer's errors point at the quote, dash or missing value."""

    @pytest.mark.parametrize(
        ("text", "position", "message"),
        [
            pytest.param('ab "cd', 3, "unterminated quoted string", id="unterminated"),
            pytest.param('"a\\"', 0, "unterminated quoted string", id="escaped-closing-quote"),
            pytest.param('action:"x', 7, "unterminated quoted string", id="unterminated-value"),
            pytest.param("a - b", 2, "expected a term right after '-'", id="dash-space"),
            pytest.param("a -", 2, "expected a term right after '-'", id="dash-at-end"),
            pytest.param(
                "x actor.email:", 14, "expected a value after 'actor.email:'", id="no-value"
            ),
            pytest.param(
                "actor.email: bob", 12, "expected a value after 'actor.email:'", id="space-value"
            ),
            pytest.param("(seq>)", 5, "expected a value after 'seq>'", id="parenthesis-value"),
        ],
    )
    def test_error(self, text: str, position: int, message: str) -> None:
        with pytest.raises(QuerySyntaxError) as info:
            tokenize(text)
        assert info.value.position == position
        assert message in info.value.message
        assert info.value.message.startswith(f"at position {position}: ")

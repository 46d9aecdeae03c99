"""The parser: precedence, grouping, field and value checks, limits, and errors with positions."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from types import FrameType

import pytest
from hypothesis import given, settings

from tests.query.strategies import query_texts
from trailkeep.errors import InvalidInputError
from trailkeep.query.ast import And, Node, Not, Or, Term
from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.parser import MAX_DEPTH, MAX_LENGTH, MAX_TERMS, parse


def w(value: str, **flags: bool) -> Term:
    """A free word (or phrase, with ``phrase=True``)."""
    return Term(None, ":", value, **flags)


def f(field: str, value: str, op: str = ":", **flags: bool) -> Term:
    """A term on a dotted field."""
    return Term(tuple(field.split(".")), op, value, **flags)  # type: ignore[arg-type]


class TestStructure:
    """NOT binds tighter than AND, AND tighter than OR; adjacency is AND; groups nest as written."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("a", w("a"), id="one-word"),
            pytest.param("a b c", And((w("a"), w("b"), w("c"))), id="implicit-and-is-n-ary"),
            pytest.param("a AND b", And((w("a"), w("b"))), id="explicit-and"),
            pytest.param("a AND b c", And((w("a"), w("b"), w("c"))), id="mixed-and"),
            pytest.param("a OR b OR c", Or((w("a"), w("b"), w("c"))), id="or-is-n-ary"),
            pytest.param("a b OR c", Or((And((w("a"), w("b"))), w("c"))), id="and-over-or"),
            pytest.param("a OR b c", Or((w("a"), And((w("b"), w("c"))))), id="or-under-and"),
            pytest.param("(a OR b) c", And((Or((w("a"), w("b"))), w("c"))), id="group"),
            pytest.param("a (b c)", And((w("a"), And((w("b"), w("c"))))), id="group-nests"),
            pytest.param("((a))", w("a"), id="redundant-parentheses"),
            pytest.param("-a", Not(w("a")), id="dash"),
            pytest.param("NOT a", Not(w("a")), id="not"),
            pytest.param("NOT a b", And((Not(w("a")), w("b"))), id="not-over-and"),
            pytest.param("NOT a OR b", Or((Not(w("a")), w("b"))), id="not-over-or"),
            pytest.param("-(a b)", Not(And((w("a"), w("b")))), id="not-group"),
            pytest.param("NOT NOT a", Not(Not(w("a"))), id="not-not"),
            pytest.param("a AND NOT b", And((w("a"), Not(w("b")))), id="and-not"),
            pytest.param("a -b", And((w("a"), Not(w("b")))), id="minus"),
            pytest.param(
                "actor.email:bob@x.io -outcome:failure",
                And((f("actor.email", "bob@x.io"), Not(f("outcome", "failure")))),
                id="fields",
            ),
            pytest.param(
                'metadata.model:"gpt 4" OR metadata.tokens_used>500',
                Or(
                    (
                        f("metadata.model", "gpt 4", phrase=True),
                        f("metadata.tokens_used", "500", ">"),
                    )
                ),
                id="metadata",
            ),
            pytest.param("and or not", And((w("and"), w("or"), w("not"))), id="lower-case-words"),
        ],
    )
    def test_parse(self, text: str, expected: Node) -> None:
        assert parse(text) == expected

    def test_positions_are_kept_but_not_compared(self) -> None:
        tree = parse("  a   actor.id:x")
        assert isinstance(tree, And)
        assert [t.position for t in tree.children if isinstance(t, Term)] == [2, 6]
        assert Term(None, ":", "a", position=99) == Term(None, ":", "a")


class TestFields:
    """Known fields and any metadata/old/new path are accepted; values must suit their field."""

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param(text, id=text)
            for text in [
                "id:evt_1",
                "seq:0",
                "seq>=9223372036854775807",
                "timestamp>now-1h",
                "timestamp:2026-11-*",
                "received_at>=2026-11-01",
                "action:login",
                "category:agents",
                "outcome:failure",
                "message:word",
                "message:*",
                "actor.id:u",
                "actor.role:admin",
                "target.org_id:o",
                "source.user_agent:curl*",
                "source.service:s",
                "client_id:c",
                "session_id:s",
                "request_id:r",
                "trace_id:t",
                "idempotency_key:k",
                "signature.alg:ed25519",
                "metadata.a.b.c:d",
                'metadata."any key!".x:y',
                "old:1",
                "new.status:x",
                "actor.name>m",
            ]
        ],
    )
    def test_accepted(self, text: str) -> None:
        parse(text)

    @pytest.mark.parametrize(
        ("text", "position", "message"),
        [
            pytest.param(
                "a foo:bar", 2, "unknown field 'foo'; known fields: id, seq,", id="unknown"
            ),
            pytest.param("foo.bar:x", 0, "unknown field 'foo.bar'", id="unknown-dotted"),
            pytest.param("foo:bar", 0, "put it in quotes", id="unknown-hints-quoting"),
            pytest.param(
                "actor.foo:x", 0, "unknown field 'actor.foo'; actor has actor.id,", id="sub-field"
            ),
            pytest.param("actor:x", 0, "'actor' is an object: name one of", id="object"),
            pytest.param("metadata:x", 0, "'metadata' is an object: name a key", id="metadata"),
            pytest.param("action.x:y", 0, "'action' has no sub-fields", id="no-sub-fields"),
            pytest.param("Action:x", 0, "unknown field 'Action'", id="case-sensitive-names"),
            pytest.param('metadata."":x', 0, "has an empty key", id="empty-key"),
            pytest.param('metadata."a\\"b":x', 0, "keys containing", id="quote-in-key"),
            pytest.param("seq:x", 4, "'seq:' needs a whole number, not 'x'", id="seq-word"),
            pytest.param("seq>1.5", 4, "'seq>' needs a whole number", id="seq-fraction"),
            pytest.param("seq:1*", 4, "'seq:' needs a whole number", id="seq-prefix"),
            pytest.param("seq>99999999999999999999", 4, "whole number", id="seq-over-64-bits"),
            pytest.param(
                "timestamp>soon", 10, "timestamp: 'soon' is not a time we can read", id="bad-time"
            ),
            pytest.param('timestamp>""', 10, "'timestamp>' needs a time", id="empty-time"),
            pytest.param("received_at<2026-02-30", 12, "is not a valid date", id="impossible-date"),
            pytest.param("seq>1*", 4, "a '*' prefix only works with ':'", id="prefix-compare"),
            pytest.param("message>a", 0, "message is full text", id="message-compare"),
            pytest.param('message:""', 8, "empty quotes", id="message-empty"),
        ],
    )
    def test_refused(self, text: str, position: int, message: str) -> None:
        with pytest.raises(QuerySyntaxError) as info:
            parse(text)
        assert (info.value.position, message in info.value.reason) == (position, True), info.value


class TestSyntaxErrors:
    """Every malformed query is a QuerySyntaxError naming the position and what was expected."""

    @pytest.mark.parametrize(
        ("text", "position", "reason"),
        [
            pytest.param("", 0, "the query is empty", id="empty"),
            pytest.param("   ", 0, "the query is empty", id="blank"),
            pytest.param("a)", 1, "unbalanced ')'", id="extra-close"),
            pytest.param(")", 0, "unbalanced ')'", id="only-close"),
            pytest.param("(a", 0, "unbalanced '(': missing its ')'", id="missing-close"),
            pytest.param("a (b (c)", 2, "unbalanced '(': missing its ')'", id="outer-unclosed"),
            pytest.param("()", 0, "empty parentheses", id="empty-group"),
            pytest.param("AND a", 0, "expected a term before 'AND'", id="leading-and"),
            pytest.param("OR a", 0, "expected a term before 'OR'", id="leading-or"),
            pytest.param("a OR", 4, "expected a term after 'OR', found the end", id="trailing-or"),
            pytest.param(
                "a AND", 5, "expected a term after 'AND', found the end", id="trailing-and"
            ),
            pytest.param("a AND OR b", 6, "expected a term after 'AND', found 'OR'", id="and-or"),
            pytest.param("a OR )", 5, "expected a term after 'OR', found ')'", id="or-close"),
            pytest.param("NOT", 3, "expected a term after 'NOT', found the end", id="bare-not"),
            pytest.param("-)", 1, "expected a term after '-', found ')'", id="dash-close"),
            pytest.param("(AND a)", 1, "expected a term after '(', found 'AND'", id="group-and"),
            pytest.param("*", 0, "a '*' needs at least one character before it", id="bare-star"),
            pytest.param(
                'a ""', 2, 'empty quotes: put the words to find in "..."', id="empty-phrase"
            ),
            pytest.param("a\x00b", 1, "the query contains the character '\\x00'", id="nul"),
            pytest.param(
                "ab\ud800", 2, "the query contains the character '\\ud800'", id="surrogate"
            ),
            pytest.param(
                "outcome:x AND actor.email:",
                26,
                "expected a value after 'actor.email:'",
                id="value-missing",
            ),
        ],
    )
    def test_error(self, text: str, position: int, reason: str) -> None:
        with pytest.raises(QuerySyntaxError) as info:
            parse(text)
        assert (info.value.position, info.value.reason) == (position, reason)
        assert str(info.value) == f"at position {position}: {reason}"

    def test_is_invalid_input(self) -> None:
        """The API maps it like any other bad input: a 400 with its own code."""
        with pytest.raises(InvalidInputError) as info:
            parse("(")
        assert info.value.code == "INVALID_QUERY"


class TestLimits:
    """Length, term count and nesting are bounded, and the error says which limit."""

    def test_length(self) -> None:
        parse("a" * MAX_LENGTH)
        with pytest.raises(QuerySyntaxError) as info:
            parse("a" * (MAX_LENGTH + 1))
        assert (info.value.position, info.value.reason) == (
            MAX_LENGTH,
            f"the query is {MAX_LENGTH + 1} characters long; the limit is {MAX_LENGTH}",
        )

    def test_terms(self) -> None:
        parse(" ".join(["a"] * MAX_TERMS))
        with pytest.raises(QuerySyntaxError) as info:
            parse(" ".join(["a"] * (MAX_TERMS + 1)))
        assert (info.value.position, info.value.reason) == (
            2 * MAX_TERMS,
            f"the query has more than {MAX_TERMS} terms",
        )

    @pytest.mark.parametrize(
        ("opener", "width"),
        [pytest.param("(", 1, id="parentheses"), pytest.param("NOT ", 4, id="not")],
    )
    def test_nesting(self, opener: str, width: int) -> None:
        closer = ")" if opener == "(" else ""
        parse(opener * MAX_DEPTH + "a" + closer * MAX_DEPTH)
        deeper = MAX_DEPTH + 1
        with pytest.raises(QuerySyntaxError) as info:
            parse(opener * deeper + "a" + closer * deeper)
        assert info.value.position == width * MAX_DEPTH
        assert f"nests more than {MAX_DEPTH} levels" in info.value.reason

    def test_nesting_mixes_parentheses_and_negation(self) -> None:
        with pytest.raises(QuerySyntaxError, match="nests more than"):
            parse("-(" * 9 + "a" + ")" * 9)

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("-" * MAX_LENGTH, id="dashes"),
            pytest.param("(" * MAX_LENGTH, id="open-parentheses"),
            pytest.param("a." * (MAX_LENGTH // 2), id="long-path-without-operator"),
            pytest.param('a."' * (MAX_LENGTH // 3), id="unterminated-quoted-keys"),
            pytest.param('a."b"' * (MAX_LENGTH // 5), id="quoted-keys-without-operator"),
            pytest.param("\\" * MAX_LENGTH, id="backslashes"),
            pytest.param('"' + "\\" * (MAX_LENGTH - 1), id="backslashes-in-quotes"),
            pytest.param("a:" * (MAX_LENGTH // 2), id="colons"),
            pytest.param(" " * MAX_LENGTH, id="spaces"),
            pytest.param("*" * MAX_LENGTH, id="stars"),
        ],
    )
    def test_adversarial_input_costs_linear_work(self, text: str) -> None:
        # Counted in bytecode instructions, not timed: deterministic on any machine. Twice the
        # input may cost at most about twice the work (a quadratic parser would cost 4x).
        whole, half = _instructions(text), _instructions(text[: len(text) // 2])
        assert whole <= 2.2 * half + 1_000
        assert whole <= 250 * len(text)


class TestAnyText:
    """Whatever the text, parse returns a tree or raises QuerySyntaxError, nothing else."""

    @settings(max_examples=400)
    @given(query_texts)
    def test_only_query_syntax_errors(self, text: str) -> None:
        try:
            parse(text)
        except QuerySyntaxError as exc:
            error = exc
        else:
            return
        assert 0 <= error.position <= len(text)


def _instructions(text: str) -> int:
    """Python bytecode instructions ``parse(text)`` executes (raising or not)."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Callable[..., object]:
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        with contextlib.suppress(QuerySyntaxError):
            parse(text)
    finally:
        sys.settrace(None)
    return count

"""Hypothesis strategies for the search language: raw query text, and trees ``parse`` can return."""

from __future__ import annotations

from hypothesis import strategies as st

from trailkeep.query.ast import And, Node, Not, Op, Or, Term, terms
from trailkeep.query.parser import MAX_DEPTH, MAX_TERMS

__all__ = ["query_texts", "trees"]

# Everything the lexer treats specially, plus letters, digits and a few non-ASCII characters.
_SYNTAX = list(' \t\n()"\\-*:<>=.AND OR NOT abc019_@%[]?^é€\U0001f600')
_WORDS = ["AND", "OR", "NOT", "actor.email:", "metadata.", "timestamp>", "seq>=", '"', "-", "("]
_chars = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")

#: Any text, weighted towards the characters and fragments the grammar cares about.
query_texts = st.one_of(
    st.text(st.sampled_from(_SYNTAX), max_size=40),
    st.lists(st.sampled_from(_WORDS) | st.text(st.sampled_from(_SYNTAX), max_size=4)).map("".join),
    st.text(max_size=30),
)

_values = st.text(_chars, max_size=12)
_free_terms = st.builds(
    lambda value, phrase, prefix: Term(None, ":", value, phrase=phrase, prefix=prefix),
    st.text(_chars, min_size=1, max_size=12),
    st.booleans(),
    st.booleans(),
)
_text_fields = st.sampled_from(
    [
        ("action",),
        ("actor", "email"),
        ("actor", "name"),
        ("metadata", "model"),
        ("metadata", "a b"),
        ("metadata", "x.y", "-z"),
        ("old",),
        ("new", "status"),
    ]
)


@st.composite
def _text_field_terms(draw: st.DrawFn) -> Term:
    field = draw(_text_fields)
    op: Op = draw(st.sampled_from([":", ":", ">", ">=", "<", "<="]))
    prefix = op == ":" and draw(st.booleans())
    phrase = draw(st.booleans())
    value = draw(_values if phrase or prefix else _values.filter(bool))
    return Term(field, op, value, phrase=phrase, prefix=prefix)


_seq_terms = st.builds(
    lambda op, n, phrase: Term(("seq",), op, str(n), phrase=phrase),
    st.sampled_from([":", ">", ">=", "<", "<="]),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
)
_time_terms = st.builds(
    lambda field, op, value, phrase: Term(field, op, value, phrase=phrase),
    st.sampled_from([("timestamp",), ("received_at",)]),
    st.sampled_from([":", ">", ">=", "<", "<="]),
    st.sampled_from(["now-1h", "2026-11-01", "2026-11-23 10:00", "7d", "today", "1763892000"]),
    st.booleans(),
)
_message_terms = st.builds(
    lambda value, phrase, prefix: Term(("message",), ":", value, phrase=phrase, prefix=prefix),
    st.text(_chars, min_size=1, max_size=12),
    st.booleans(),
    st.booleans(),
)
_terms = st.one_of(_free_terms, _text_field_terms(), _seq_terms, _time_terms, _message_terms)


def _depth(node: Node) -> int:
    """How deep ``parse(unparse(node))`` nests: each negation and each parenthesized group."""
    if isinstance(node, Term):
        return 0
    if isinstance(node, Not):
        grouped = isinstance(node.child, And | Or)
        return 1 + grouped + _depth(node.child)
    nested = (And, Or) if isinstance(node, And) else (Or,)
    return max(isinstance(child, nested) + _depth(child) for child in node.children)


def _fits(node: Node) -> bool:
    return _depth(node) <= MAX_DEPTH and sum(1 for _ in terms(node)) <= MAX_TERMS


#: Trees ``parse`` can return: every term valid for its field, within the limits.
trees: st.SearchStrategy[Node] = st.recursive(
    _terms,
    lambda children: st.one_of(
        st.builds(Not, children),
        st.lists(children, min_size=2, max_size=4).map(lambda c: And(tuple(c))),
        st.lists(children, min_size=2, max_size=4).map(lambda c: Or(tuple(c))),
    ),
    max_leaves=12,
).filter(_fits)

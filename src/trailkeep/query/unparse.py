"""Writing a syntax tree back as query text that parses to the same tree.

Used to show a normalized query (in the viewer, in logs) and to prove the lexer's escapes by
round trip. Bare values escape with ``\\`` every character the lexer would stop at or read as
syntax; quoted values escape only ``"`` and ``\\``. After ``>`` or ``<``, a bare value's
leading ``=`` is escaped too: ``action>\\=x`` is ``>`` with ``=x``, where ``action>=x`` would
lex as ``>=`` with ``x`` (and ``action>=`` alone as an operator with no value).
"""

from __future__ import annotations

from typing import Final

from trailkeep.query.ast import And, Node, Not, Or, Term
from trailkeep.query.fields import display_path
from trailkeep.query.lexer import KEYWORDS

__all__ = ["unparse"]

_ALWAYS_ESCAPED: Final = frozenset('()"\\*')
_ESCAPED_IN_FREE_WORDS: Final = frozenset(":<>")
#: Operators that a bare value's leading ``=`` would extend (``>`` + ``=x`` reads as ``>=``).
_EXTENDED_BY_EQUALS: Final = frozenset({">", "<"})


def unparse(node: Node) -> str:
    """Query text for ``node`` such that ``parse(unparse(node)) == node``.

    Holds for every tree ``parse`` can return; a hand-built term whose bare value is empty
    (and not a prefix) has no spelling, and neither has a node the language cannot write
    (``Values``, ``Contains``, ...): those raise ``TypeError``.
    """
    if isinstance(node, Term):
        return _term(node)
    if isinstance(node, Not):
        return "-" + _grouped(node.child, nested=(And, Or))
    if isinstance(node, And):
        return " ".join(_grouped(child, nested=(And, Or)) for child in node.children)
    if not isinstance(node, Or):
        raise TypeError(f"the search language cannot write {type(node).__name__}")
    return " OR ".join(_grouped(child, nested=(Or,)) for child in node.children)


def _grouped(node: Node, nested: tuple[type[And] | type[Or], ...]) -> str:
    """``node`` as an operand, in parentheses when it would otherwise merge with its parent."""
    text = unparse(node)
    return f"({text})" if isinstance(node, nested) else text


def _term(term: Term) -> str:
    if term.phrase:
        value = '"' + term.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        value = _bare(term.value, free=term.field is None)
        if term.op in _EXTENDED_BY_EQUALS and value.startswith("="):
            value = "\\" + value
    star = "*" if term.prefix else ""
    if term.field is None:
        return value + star
    return f"{display_path(term.field)}{term.op}{value}{star}"


def _bare(value: str, *, free: bool) -> str:
    out = []
    for i, ch in enumerate(value):
        special = ch in _ALWAYS_ESCAPED or ch.isspace()
        if free:
            special = special or ch in _ESCAPED_IN_FREE_WORDS or (i == 0 and ch == "-")
        out.append("\\" + ch if special else ch)
    text = "".join(out)
    return "\\" + text if free and text in KEYWORDS else text

"""The search language's syntax tree: what a query means, before any backend sees it.

Nodes are frozen, slotted and compare by value, so tests state an expected tree literally and a
parse of an unparsed tree equals the original. ``And`` and ``Or`` keep their children in query
order and are n-ary: ``a b c`` is one ``And`` of three terms, while ``a (b c)`` nests, as
written. Term positions are carried for error messages but take no part in equality.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = ["COMPARISONS", "OPS", "And", "Node", "Not", "Op", "Or", "Term", "terms"]

Op: TypeAlias = Literal[":", ">", ">=", "<", "<="]
#: Every operator a term may carry; ``:`` matches, the others compare.
OPS: Final[tuple[Op, ...]] = (":", ">=", "<=", ">", "<")
COMPARISONS: Final[frozenset[str]] = frozenset({">", ">=", "<", "<="})


@dataclass(frozen=True, slots=True)
class Term:
    """One condition: free text (``field`` is None) or a condition on one event field.

    Attributes:
        field: the field's path segments (``("actor", "email")``), or None for free text.
        op: ``:`` to match, or a comparison.
        value: the text the user wrote, escapes and quotes removed.
        phrase: the value was quoted (free text then matches the words in order).
        prefix: the value ended in an unescaped ``*``, which is not part of ``value``.
        position: offset of the term in the query text, for error messages only.
    """

    field: tuple[str, ...] | None
    op: Op
    value: str
    phrase: bool = False
    prefix: bool = False
    position: int = dataclasses.field(default=0, compare=False, repr=False)

    @property
    def field_name(self) -> str | None:
        """The field as dotted text (``actor.email``), or None for free text."""
        return None if self.field is None else ".".join(self.field)


@dataclass(frozen=True, slots=True)
class And:
    """Every child matches (written ``a b`` or ``a AND b``)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not match (written ``-a`` or ``NOT a``); a missing field is a non-match."""

    child: Node


Node: TypeAlias = Term | And | Or | Not


def terms(node: Node) -> Iterator[Term]:
    """Every term under ``node``, in query order."""
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Not):
        yield from terms(node.child)
    else:
        for child in node.children:
            yield from terms(child)

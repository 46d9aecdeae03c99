"""The query tree: what a query means, before any backend sees it.

Every surface states its conditions as this one backend-neutral tree: the search language
parses to ``Term``/``And``/``Or``/``Not``; native filters and the vendor dialects add
``Values``, ``Contains``, ``Exists``, ``Each`` and ``Compare``. Storage compiles the tree for
its backend with every value bound (``trailkeep.storage``); nothing here is SQL.

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

__all__ = [
    "COMPARISONS",
    "ELEMENT_NODES",
    "OPS",
    "And",
    "Compare",
    "CompareOp",
    "Contains",
    "Each",
    "Exists",
    "Field",
    "Node",
    "Not",
    "Op",
    "Or",
    "Scalar",
    "Term",
    "Values",
    "terms",
]

Op: TypeAlias = Literal[":", ">", ">=", "<", "<="]
#: Every operator a term may carry; ``:`` matches, the others compare.
OPS: Final[tuple[Op, ...]] = (":", ">=", "<=", ">", "<")
COMPARISONS: Final[frozenset[str]] = frozenset({">", ">=", "<", "<="})
CompareOp: TypeAlias = Literal[">", ">=", "<", "<="]
#: A field path as ``trailkeep.query.fields.resolve`` accepts it: ``("actor", "id")``.
Field: TypeAlias = tuple[str, ...]
#: A value a condition compares with; typed: a str never equals a JSON number.
Scalar: TypeAlias = str | int | bool


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


@dataclass(frozen=True, slots=True)
class Values:
    """The field's value equals one of ``values``, by type.

    A str matches a JSON string equal to it, an int a JSON number equal to it, a bool JSON
    ``true``/``false``. Arrays do not match element-wise (use ``Each``); a missing field never
    matches; ``Values(f, ())`` matches nothing.
    """

    field: Field
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Contains:
    """Some field in ``fields`` holds a string containing ``text``.

    ``ignore_case`` folds ASCII letters only (the same on every backend); missing and
    non-string values do not match.
    """

    fields: tuple[Field, ...]
    text: str
    ignore_case: bool = True


@dataclass(frozen=True, slots=True)
class Exists:
    """The field is present and not JSON null."""

    field: Field


@dataclass(frozen=True, slots=True)
class Compare:
    """The field's value is in order ``op`` with ``value``: a str with strings only, an int
    with numbers only (bytewise order for strings on every backend)."""

    field: Field
    op: CompareOp
    value: str | int


@dataclass(frozen=True, slots=True)
class Each:
    """The value at ``field`` is a JSON array with at least one element meeting ``where``.

    Paths inside ``where`` are relative to the element: ``()`` is the element itself,
    ``("k",)`` its key ``k`` when it is an object. Only ``ELEMENT_NODES`` may appear there.
    """

    field: Field
    where: Node


Node: TypeAlias = Term | And | Or | Not | Values | Contains | Exists | Compare | Each
#: The node kinds allowed inside ``Each.where``.
ELEMENT_NODES: Final = (Values, Contains, Exists, And, Or, Not)


def terms(node: Node) -> Iterator[Term]:
    """Every search-language term under ``node``, in query order."""
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Not):
        yield from terms(node.child)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from terms(child)

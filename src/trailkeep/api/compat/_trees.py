"""Small builders of query trees (``trailkeep.query.ast``) that several dialects share.

A vendor parameter matches what the vendor's record *shows*, and records often show a derived
value: the first non-empty string of several fields (Kubiya ``category_name`` is
``metadata.category_name``, else ``actor.name``), or a constant when the event has none (an
Agilicus ``org_id`` is the tenant). These helpers say that as a tree over stored fields, so
storage answers it exactly, with no row read back into Python.

A field *shows* a string when it holds a non-empty JSON string: ``Compare(path, ">", "")``
(a string compares only with strings, and every non-empty string sorts after ``""``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from trailkeep.query.ast import And, Compare, Contains, Node, Not, Or, Values

__all__ = [
    "FALSE",
    "TRUE",
    "Path",
    "all_of",
    "any_of",
    "ascii_lower",
    "contains_shown",
    "equals",
    "first_shown_equals",
    "shows",
]

Path = tuple[str, ...]

_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

#: Matches every event (an empty conjunction).
TRUE: Final[Node] = And(())
#: Matches no event (an empty disjunction).
FALSE: Final[Node] = Or(())


def ascii_lower(text: str) -> str:
    """``text`` with only ASCII letters lowered: how ``Contains`` compares, on every backend."""
    return text.translate(_ASCII_LOWER)


def all_of(nodes: Iterable[Node | None]) -> Node | None:
    """The conjunction of the given conditions (None ones skipped); None when there are none."""
    kept = tuple(n for n in nodes if n is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(kept)


def any_of(nodes: Iterable[Node]) -> Node:
    """The disjunction of the given conditions (no condition: matches nothing)."""
    kept = tuple(nodes)
    return kept[0] if len(kept) == 1 else Or(kept)


def equals(path: Path, value: str) -> Node:
    """The field holds exactly the string ``value``."""
    return Values(path, (value,))


def shows(path: Path) -> Node:
    """The field holds a non-empty string (what ``first_text`` would pick)."""
    return Compare(path, ">", "")


def first_shown_equals(paths: Sequence[Path], value: str, fallback: str | None = None) -> Node:
    """The first of ``paths`` that shows a string shows ``value`` (``fallback`` when none does).

    ``first_shown_equals((a, b), v)`` is ``a = v OR (a shows nothing AND b = v)``: a record
    whose ``a`` is set never matches on ``b``, exactly as the record displays ``a``.
    """
    branches: list[Node] = []
    earlier: list[Node] = []
    for path in paths:
        branches.append(all_of([*earlier, equals(path, value)]) or TRUE)
        earlier.append(Not(shows(path)))
    if fallback is not None and fallback == value:
        branches.append(all_of(earlier) or TRUE)
    return any_of(branches)


def contains_shown(paths: Sequence[Path], text: str, fallback: str | None = None) -> Node:
    """The first of ``paths`` that shows a string contains ``text`` (ASCII case-insensitive);
    ``fallback`` is shown when none does."""
    branches: list[Node] = []
    earlier: list[Node] = []
    for path in paths:
        # The substring test first: it rules most events out with no read of the earlier paths.
        branches.append(all_of([Contains((path,), text), *earlier]) or TRUE)
        earlier.append(Not(shows(path)))
    if fallback is not None and ascii_lower(text) in ascii_lower(fallback):
        branches.append(all_of(earlier) or TRUE)
    return any_of(branches)

"""A piece of SQL with its bound values: what the compilers build and the backends run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = ["FALSE", "TRUE", "SqlFragment", "join"]


@dataclass(frozen=True, slots=True)
class SqlFragment:
    """SQL text (identifiers and operators from code only) and the values it binds, in order."""

    sql: str
    params: tuple[object, ...]


#: A condition no row meets, in every dialect.
FALSE: Final = SqlFragment("(1 = 0)", ())
#: A condition every row meets, in every dialect.
TRUE: Final = SqlFragment("(1 = 1)", ())


def join(parts: Iterable[SqlFragment], joiner: str) -> SqlFragment:
    """The fragments joined by ``joiner`` (`` AND ``, `` OR ``), in parentheses."""
    listed = list(parts)
    return SqlFragment(
        "(" + joiner.join(p.sql for p in listed) + ")",
        tuple(param for p in listed for param in p.params),
    )

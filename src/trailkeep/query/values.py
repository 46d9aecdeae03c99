"""Reading a term's value as what its field holds: a number, a whole number or a time.

Shared by the parser (which checks values so errors carry their position) and the compiler
(which binds them). A value "is a number" when it is a JSON-style decimal literal with at most
a three-digit exponent (``500``, ``-1.5``, ``2e10``): every backend can bind it, and the
exponent bound keeps PostgreSQL's ``numeric`` from overflowing on user input.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Final

from trailkeep.model.timeparse import format_time, parse_time

__all__ = ["MAX_INT64", "as_integer", "as_number", "as_time"]

MAX_INT64: Final = 2**63 - 1
_NUMBER: Final = re.compile(r"-?\d++(?:\.\d++)?(?:[eE][+-]?\d{1,3})?", re.ASCII)
_INTEGER: Final = re.compile(r"-?\d++", re.ASCII)


def as_number(text: str) -> Decimal | None:
    """The number ``text`` spells, or None when it is not a number literal."""
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def as_integer(text: str) -> int | None:
    """The whole number ``text`` spells, or None when it is not one or exceeds 64 bits."""
    if not _INTEGER.fullmatch(text) or len(text) > 20:
        return None
    value = int(text)
    return value if -MAX_INT64 - 1 <= value <= MAX_INT64 else None


def as_time(text: str, *, param: str, now: datetime | None) -> str | None:
    """The fixed-width timestamp ``text`` names, or None for an empty value.

    Raises:
        TimeParseError: ``text`` is not a time ``parse_time`` reads.
    """
    parsed = parse_time(text, param=param, now=now)
    return None if parsed is None else format_time(parsed)

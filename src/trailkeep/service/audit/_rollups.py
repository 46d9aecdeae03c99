"""Facet rollups recounted from the events, and compared with the stored ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, Final, cast

from trailkeep.model import _native
from trailkeep.query.facets import DIMENSIONS
from trailkeep.storage._audit_chunk import TallySpec
from trailkeep.storage._facets import HOUR_TOTAL
from trailkeep.storage.rows import QUERY_COLUMNS

from ._report import Problem

__all__ = ["RollupTally"]

_TS: Final = QUERY_COLUMNS.index("ts")
#: Dimensions with many values (one per user), counted on their own; the others are counted
#: together, as one key per combination of their values, which stays small.
_SPREAD: Final = ("actor.id",)
_GROUPED: Final = tuple(name for name in DIMENSIONS if name not in _SPREAD)
_AT: Final = {name: QUERY_COLUMNS.index(column) for name, column in DIMENSIONS.items()}
#: The few-valued dimensions' columns of a row, as one tuple (they are more than one).
_GROUPED_AT: Final = itemgetter(*(_AT[name] for name in _GROUPED))


class RollupTally:
    """Counts what the rollups should hold, per hour, from each event's query columns.

    Counting happens a chunk at a time with ``Counter.update`` over zipped columns (C loops),
    one update for the combinations of the few-valued dimensions and one per many-valued one.
    Days are the sums of their hours and the hour total the sum of the combinations, as the
    writer's ``rollup_counts`` adds each event to its day and its hour.

    With the C part (``_fastleaf.Tally``, the same counts in a hash table of bytes) the rows
    are counted there, by the C row check itself for the rows it vouches for (``spec``), and
    only a row with a value that is neither a str nor None is counted here; ``expected`` is
    the sum of both. ``native=False``: everything here (the reference the C part is tested
    against).
    """

    __slots__ = ("_grouped", "_native", "_spread")

    def __init__(self, *, native: bool = True) -> None:
        self._grouped: Counter[tuple[str, tuple[str | None, ...]]] = Counter()
        self._spread: dict[str, Counter[tuple[str, str | None]]] = {n: Counter() for n in _SPREAD}
        groups = (tuple((n, _AT[n]) for n in _GROUPED), *(((n, _AT[n]),) for n in _SPREAD))
        self._native: Any = (
            _native.Tally(_TS, HOUR_TOTAL, groups) if native and _native.Tally is not None else None
        )

    def add(self, rows: Sequence[Sequence[str | None]]) -> None:
        """Count a chunk of events, each given as its ``QUERY_COLUMNS`` values."""
        if not rows:
            return
        if self._native is not None:
            rows = self._native.add(rows)  # what it does not take comes back
            if not rows:
                return
        hours = [ts[:13] if type(ts := row[_TS]) is str else "" for row in rows]
        self._grouped.update(zip(hours, map(_GROUPED_AT, rows), strict=True))
        for name, counter in self._spread.items():
            counter.update(zip(hours, map(itemgetter(_AT[name]), rows), strict=True))

    def spec(self) -> TallySpec:
        """What ``add`` does, for the C row check (``AuditChunk``'s ``tally``): the C tally
        itself, or without it, as data: the timestamp's column, and each counter with the
        column(s) it counts per hour."""
        if self._native is not None:
            return cast(TallySpec, self._native)
        grouped = tuple(_AT[name] for name in _GROUPED)
        spread = tuple((self._spread[name], _AT[name]) for name in _SPREAD)
        return (_TS, ((self._grouped, grouped), *spread))

    @property
    def whole(self) -> TallySpec | None:
        """The C tally if it counted every row so far (none came back to the Python one): what
        ``Store.audit_rollups_match`` compares with the stored rollups; else None."""
        if self._native is not None and not self._grouped and not any(self._spread.values()):
            return cast(TallySpec, self._native)
        return None

    def matches(self, stored: dict[tuple[str, str, str], int]) -> bool:
        """Whether the stored rollups are ``expected()`` (in C, without making it, when the C
        tally counted every row)."""
        if self._native is not None and not self._grouped and not any(self._spread.values()):
            return bool(self._native.matches(stored))
        return stored == self.expected()

    def expected(self) -> dict[tuple[str, str, str], int]:
        """``(dim, period, value) -> count`` as the writer would have kept it."""
        out: Counter[tuple[str, str, str]] = Counter()
        if self._native is not None:
            out.update(self._native.expected())
        for (hour, values), n in self._grouped.items():
            assert hour is not None
            out[(HOUR_TOTAL, hour, "")] += n
            for name, value in zip(_GROUPED, values, strict=True):
                if value is not None:
                    out[(name, hour, value)] += n
                    out[(name, hour[:10], value)] += n
        result = dict(out)
        get = result.get
        for name, counter in self._spread.items():
            for (hour, value), n in counter.items():
                if value is not None:  # added to: the C tally may have counted it too
                    key, day = (name, hour, value), (name, hour[:10], value)
                    result[key] = get(key, 0) + n
                    result[day] = get(day, 0) + n
        return result


def compare_rollups(
    stored: dict[tuple[str, str, str], int],
    expected: dict[tuple[str, str, str], int],
    deleted: int = 0,
) -> Iterable[Problem]:
    """One problem per rollup row that differs from the recount (a row each, since each is
    read on its own by a facet query).

    ``deleted`` events (rows missing, already reported) are still counted by the rollups, as
    the writer keeps them: a dimension's surplus of at most that many, at one period width,
    is their trace and not another problem.
    """
    if stored == expected:  # the common case, in one C-level comparison
        return
    diffs = {
        key: stored.get(key, 0) - expected.get(key, 0) for key in stored.keys() | expected.keys()
    }
    diffs = {key: d for key, d in diffs.items() if d}
    if deleted:
        groups: dict[tuple[str, int], list[int]] = {}
        for (dim, period, _), d in diffs.items():
            groups.setdefault((dim, len(period)), []).append(d)
        traces = {g for g, ds in groups.items() if min(ds) > 0 and sum(ds) <= deleted}
        diffs = {k: d for k, d in diffs.items() if (k[0], len(k[1])) not in traces}
    for key in sorted(diffs):
        dim, period, value = key
        what = "hour total" if dim == HOUR_TOTAL else f"{dim}={value!r}"
        have, want = stored.get(key, 0), expected.get(key, 0)
        yield Problem("rollup", f"facet count {what} for {period} is {have}, the events say {want}")

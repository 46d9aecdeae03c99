"""A chunk of stored rows for the auditor, with the rows the C part could vouch for already
checked (``Store.audit_scan``).

The auditor (``service.audit``) checks each stored row against its content; the reference for
every check is Python (``service.audit._events``). The C part (``model/_fastleaf.c``,
``check_rows`` and ``SQLiteRows``) takes a chunk first and *vouches* for each row whose leaf,
query columns and full-text row all match its content — the common case — handing back only
what the auditor still needs from it (its stored leaf hash, its query columns for the rollup
recount, its ``received_at`` where the checkpoint checks watch it). Every other row comes back
as ``Store.audit_rows`` gives it, for the exact path, which names what is wrong. Without the C
part every row does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from trailkeep.model import _native

__all__ = ["AuditChunk", "ChunkReader", "TallySpec", "vouch_rows"]

#: How the rollup recount counts a row (``service.audit._rollups.RollupTally.spec``): the
#: timestamp's column, then each counter with the column, or columns, it counts per hour. Given
#: it, the C part counts the rows it vouches for itself instead of listing their columns.
TallySpec: TypeAlias = "tuple[int, tuple[tuple[dict[Any, int], int | tuple[int, ...]], ...]]"


@dataclass(frozen=True, slots=True)
class AuditChunk:
    """The rows of positions ``[start, end)`` of one tenant.

    Attributes:
        leaves: per position, the stored leaf hash of a row vouched for, else None (the exact
            path fills in the rest).
        counted: the query columns of each row vouched for (what the rollups count), unless
            a ``TallySpec`` was given: then they are counted already.
        rest: every row not vouched for, as ``Store.audit_rows`` gives it.
        watched: ``(seq, received_at)`` of the rows vouched for whose ``seq`` was watched.
        vouched: how many rows were vouched for.
    """

    leaves: list[bytes | None]
    counted: list[tuple[str | None, ...]]
    rest: list[tuple[Any, ...]]
    watched: list[tuple[int, str]]
    vouched: int

    @classmethod
    def unchecked(cls, rows: list[tuple[Any, ...]], start: int, end: int) -> AuditChunk:
        """Every row for the exact path (the reference the C part is tested against)."""
        return cls([None] * (end - start), [], rows, [], 0)

    def present(self, start: int) -> list[int]:
        """The positions that have a row, in order (before the exact path fills ``leaves``)."""
        vouched = [start + i for i, leaf in enumerate(self.leaves) if leaf is not None]
        return sorted(vouched + [row[0] for row in self.rest if type(row[0]) is int])


#: ``(start, end, watch, tally) -> AuditChunk`` for one tenant (``Store.audit_scan``).
ChunkReader: TypeAlias = Callable[[int, int, frozenset[int], "TallySpec | None"], AuditChunk]


def vouch_rows(
    rows: list[tuple[Any, ...]],
    start: int,
    end: int,
    tenant_id: str,
    watch: frozenset[int],
    tally: TallySpec | None = None,
) -> AuditChunk:
    """``rows`` (of ``Store.audit_rows``) through the C part's ``check_rows``, if it is built."""
    if _native.check_rows is None:  # pragma: no cover - not built: the exact path judges all
        return AuditChunk.unchecked(rows, start, end)
    tenant_json = orjson.dumps(tenant_id).decode()
    found = _native.check_rows(rows, start, end, tenant_json, orjson.loads, watch, tally)
    return AuditChunk(*found)

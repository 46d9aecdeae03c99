"""PostgreSQL's answers to the auditor (``Store.audit_*``): stored rows and nodes as they are.

A mixin of ``PostgresStore``, kept apart so the auditor's reads never mix with the query path.
PostgreSQL keeps no facet rollups (its facets count the events) but hour totals (migration 9:
all events, and per action, outcome and target type, by hour), which answer deep pages and
totals and so are recounted like SQLite's rollups; its full-text vector is a generated column
of ``search_message`` and ``search_fields``, so those two are what is checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from trailkeep.storage._dialects import HOUR_TOTAL, PG_HOUR_DIMS
from trailkeep.storage._postgres_common import pg_text
from trailkeep.storage.rows import QUERY_COLUMNS

__all__ = ["PostgresAudit"]

#: What ``hour_totals`` counts (its ``dim``s), and per what: hours
#: (the first 13 characters of ``ts``).
_HOUR_DIMS: Final = frozenset((HOUR_TOTAL, *PG_HOUR_DIMS))
_HOUR_WIDTH: Final = 13

_ROWS: Final = (
    "SELECT e.seq, e.id, e.received_at, e.body, e.salts, t.hash, e.redactions,"  # noqa: S608 - names
    f" e.search_message, e.search_fields, {', '.join('e.' + c for c in QUERY_COLUMNS)}"
    " FROM events e LEFT JOIN tree_nodes t"
    " ON t.tenant_id = e.tenant_id AND t.level = 0 AND t.idx = e.seq"
    " WHERE e.tenant_id = %s AND e.seq >= %s AND e.seq < %s ORDER BY e.seq"
)


class PostgresAudit:
    """``Store.audit_*`` for PostgreSQL: one statement (one snapshot) per call."""

    if TYPE_CHECKING:

        def _all(self, sql: str, params: Sequence[Any], doing: str) -> list[tuple[Any, ...]]: ...

    def audit_rows(self, tenant_id: str, start: int, end: int) -> list[tuple[Any, ...]]:
        return self._all(_ROWS, (tenant_id, start, end), "read events to audit")

    def audit_nodes(
        self, tenant_id: str, level: int, start: int, end: int
    ) -> list[tuple[int, int, bytes]]:
        rows = self._all(
            "SELECT level, idx, hash FROM tree_nodes"
            " WHERE tenant_id = %s AND level = %s AND idx >= %s AND idx < %s ORDER BY idx",
            (tenant_id, level, start, end),
            "read tree nodes to audit",
        )
        return [(level, idx, bytes(h)) for level, idx, h in rows]

    def audit_strays(self, tenant_id: str, size: int) -> list[tuple[int, str]]:
        rows = self._all(
            "SELECT seq, id FROM events WHERE tenant_id = %s AND (seq < 0 OR seq >= %s)"
            " ORDER BY seq",
            (tenant_id, size),
            "read stray events",
        )
        return [(seq, event_id) for seq, event_id in rows]

    def audit_stray_nodes(self, tenant_id: str, size: int) -> list[tuple[int, int]]:
        rows = self._all(
            "SELECT level, idx FROM tree_nodes WHERE tenant_id = %s"
            " AND (level < 0 OR level > 62 OR idx < 0 OR ((idx + 1) << level::int) > %s)"
            " ORDER BY level, idx",
            (tenant_id, size),
            "read stray tree nodes",
        )
        return [(level, idx) for level, idx in rows]

    def audit_rollups(self, tenant_id: str) -> dict[tuple[str, str, str], int] | None:
        rows = self._all(
            "SELECT dim, hour, value, n FROM hour_totals WHERE tenant_id = %s AND n <> 0",
            (tenant_id,),
            "read hour totals to audit",
        )
        return {(dim, hour, value): n for dim, hour, value, n in rows}

    def audit_rollups_keep(self, dim: str, period: str) -> bool:
        return len(period) == _HOUR_WIDTH and dim in _HOUR_DIMS

    def audit_text(self, value: str) -> str:
        return pg_text(value)

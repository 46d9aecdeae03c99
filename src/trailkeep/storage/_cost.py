"""Which reads are cheap: a walk of one index that stops after ``limit`` rows.

Everything else (a search the indexes cannot walk, several filters, an unindexed filter, a
custom order, a deep offset) may read a large part of the tenant, so the service runs it
under bounded concurrency (``trailkeep.service.reads``).
"""

from __future__ import annotations

from typing import Final

from trailkeep.query.filters import FILTER_COLUMNS, EventQuery
from trailkeep.storage._facets import FacetSelection

__all__ = ["MAX_CHEAP_OFFSET", "bounded_walk"]

#: Filters led by an index of their own that ends in ``(ts, id)`` (or selects few rows).
_WALKED: Final = frozenset(
    {"action", "actor.id", "target.id", "session_id", "request_id", "trace_id"}
)
#: Rows an index walk may skip and still count as cheap.
MAX_CHEAP_OFFSET: Final = 1000


def bounded_walk(query: EventQuery) -> bool:
    """Whether a page of ``query`` is one index walk stopping after ``offset + limit`` rows."""
    if query.order_by is not None or query.offset > MAX_CHEAP_OFFSET:
        return False
    sel = FacetSelection.of(query)
    if sel.rest is not None:
        return False
    if not sel.filters:
        return True
    if query.by_seq or len(sel.filters) > 1:
        return False
    ((name, values),) = sel.filters.items()
    return name in _WALKED and name in FILTER_COLUMNS and len(values) == 1

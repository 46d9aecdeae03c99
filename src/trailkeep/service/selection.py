"""Which events a list, a live stream or an export covers: filters, a time range, a query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from trailkeep.model.timeparse import utcnow
from trailkeep.query.ast import Node
from trailkeep.query.filters import EventQuery, Sort, conjoin, filter_node
from trailkeep.query.parser import parse
from trailkeep.query.times import fix_times

__all__ = ["Selection", "search_tree"]


def search_tree(q: str | None, now: datetime | None = None) -> Node | None:
    """A search query's tree with relative times read against ``now`` (default: the clock);
    None for a blank one.

    Raises:
        QuerySyntaxError: the query does not parse or validate.
    """
    if q is None or not q.strip():
        return None
    return fix_times(parse(q), utcnow() if now is None else now)


@dataclass(frozen=True, slots=True)
class Selection:
    """The structured part of an event query, shared by every route that reads many events.

    Attributes:
        filters: API filter name (``actor.id``) → accepted values; any of them matches.
        start: inclusive lower bound on ``timestamp``, already in the fixed-width form.
        end: exclusive upper bound on ``timestamp``, likewise.
        q: a search-language query (docs/search.md) ANDed with the rest, or None.
    """

    filters: Mapping[str, Sequence[str]] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    q: str | None = None

    @property
    def is_everything(self) -> bool:
        """True when nothing narrows the selection: every event of the tenant is in it."""
        return not self.filters and self.start is None and self.end is None and not self.q

    def condition(self, now: datetime | None = None) -> Node | None:
        """The filters and ``q`` as one tree, relative times read against ``now``.

        Raises:
            QuerySyntaxError: ``q`` does not parse or validate.
        """
        return conjoin(filter_node(self.filters), search_tree(self.q, now))

    def in_log_order(
        self,
        *,
        after_seq: int,
        limit: int,
        max_seq: int | None = None,
        where: Node | None = None,
    ) -> EventQuery:
        """The query reading this selection in ``seq`` order, after ``after_seq``.

        Args:
            where: ``condition()`` (the caller builds it once, so a walk's relative times
                stay fixed).
        """
        return EventQuery(
            where=where,
            start=self.start,
            end=self.end,
            sort=Sort.ASC,
            limit=limit,
            max_seq=max_seq,
            after_seq=after_seq,
            by_seq=True,
        )

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form, filters sorted, for tokens and headers."""
        return {
            "filters": {k: list(v) for k, v in sorted(self.filters.items())},
            "start": self.start,
            "end": self.end,
            "q": self.q,
        }

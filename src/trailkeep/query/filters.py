"""What one read asks of storage: a condition tree, a time range, an order and a window.

``EventQuery`` carries the tree (``trailkeep.query.ast``), never SQL: each backend compiles it.
Native filters (``?action=login&actor.id=u1``) become ``Values`` nodes here (``filter_node``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from trailkeep.query.ast import And, Node, Values

__all__ = ["FILTER_COLUMNS", "EventQuery", "Sort", "conjoin", "filter_node", "filter_path"]

#: API filter name → indexed column. Every field a filter makes sense for (DESIGN §2);
#: free text, ``old``/``new`` and ``metadata`` are the search language's job.
FILTER_COLUMNS: Final[Mapping[str, str]] = {
    "action": "action",
    "category": "category",
    "outcome": "outcome",
    "actor.id": "actor_id",
    "actor.email": "actor_email",
    "actor.type": "actor_type",
    "target.id": "target_id",
    "target.type": "target_type",
    "source.ip": "source_ip",
    "client_id": "client_id",
    "session_id": "session_id",
    "request_id": "request_id",
    "trace_id": "trace_id",
}


class Sort(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True, slots=True)
class EventQuery:
    """One read over a tenant's events, ordered by ``(timestamp, id)`` unless told otherwise.

    Attributes:
        where: the condition (a tree); None selects every event.
        start: inclusive lower bound on ``timestamp`` (fixed-width RFC 3339), or None.
        end: exclusive upper bound on ``timestamp``, or None.
        sort: the direction of the order.
        order_by: a field (path) to order by first, ties by ``(timestamp, id)``; a missing
            value sorts as the smallest; strings by code point on every backend.
        limit: most events a page holds.
        offset: matches to skip before the page (after ``after``).
        after: keyset position ``(timestamp, id)`` the page continues from, or None (only
            with the default order).
        max_seq: the newest ``seq`` a paged walk may see, fixed on its first page so that
            events arriving mid-walk never shift its pages.
        after_seq: only events with a larger ``seq`` (live streams resume from here).
        by_seq: order by ``seq`` (log order) instead of ``(timestamp, id)``; ``after`` is
            then ignored.
    """

    where: Node | None = None
    start: str | None = None
    end: str | None = None
    sort: Sort = Sort.DESC
    order_by: tuple[str, ...] | None = None
    limit: int = 50
    offset: int = 0
    after: tuple[str, str] | None = None
    max_seq: int | None = None
    after_seq: int | None = None
    by_seq: bool = False

    def __post_init__(self) -> None:
        if self.limit < 0 or self.offset < 0:
            raise ValueError(f"limit and offset must be >= 0, not {self.limit}, {self.offset}")
        if self.order_by is not None and (self.after is not None or self.by_seq):
            raise ValueError("order_by pages by offset: it takes neither after nor by_seq")


def filter_path(name: str) -> tuple[str, ...]:
    """The field path of a native filter name (``actor.id`` → ``("actor", "id")``)."""
    return tuple(name.split("."))


def filter_node(filters: Mapping[str, Sequence[str]]) -> Node | None:
    """Native filters as one tree: each name's values ORed (``Values``), the names ANDed.

    Raises:
        KeyError: a name that is not in ``FILTER_COLUMNS``.
    """
    nodes: list[Node] = []
    for name, values in sorted(filters.items()):
        FILTER_COLUMNS[name]
        nodes.append(Values(filter_path(name), tuple(values)))
    return conjoin(*nodes)


def conjoin(*nodes: Node | None) -> Node | None:
    """The AND of the given conditions (Nones left out); None when there are none."""
    present = [node for node in nodes if node is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else And(tuple(present))

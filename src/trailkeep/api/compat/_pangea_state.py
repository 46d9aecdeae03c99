"""What the Pangea dialect remembers between requests in the server process's memory,
bounded and expiring: accepted requests (a ``/v2/log_async`` write, an export being counted)
and the unpublished roots it handed out (so a later ``prev_root`` names a tree size).

Search result sets and exports are also kept as dialect notes in the database, so any process
on it answers their ids (``pangea``); a write's request id and a ``prev_root`` are answered by
the process that issued them (``docs/dialects.md`` says so).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from trailkeep.model.tenant import Permission
from trailkeep.query.ast import Node
from trailkeep.query.filters import Sort

__all__ = ["REQUEST_TTL", "RESULT_TTL", "Accepted", "PangeaState", "ResultSet"]

#: How long a search's results stay pageable (Pangea's example keeps about two days).
RESULT_TTL: Final = 2 * 24 * 3600.0
#: How long an accepted request's outcome can be polled.
REQUEST_TTL: Final = 3600.0
_MAX_ENTRIES: Final = 10_000

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class ResultSet:
    """A search (or export) frozen at the log size it ran against, paged by offset.

    ``spec`` is what it selects as the request gave it, checked and with its times made
    absolute (``query``, ``restriction``, ``start``, ``end``, ``order``, ``order_by``): the
    other selecting fields are compiled from it, and a download link carries it.
    """

    tenant_id: str
    spec: dict[str, Any]
    where: Node | None
    start: str | None
    end: str | None
    sort: Sort
    order_by: tuple[str, ...] | None
    size: int
    #: Events below this seq are answered as published, against the root of this size.
    published: int
    count: int
    verbose: bool
    expires_at: str

    @property
    def restriction(self) -> Any:
        """The ``search_restriction`` it was searched with (``assert_search_restriction``)."""
        return self.spec.get("restriction")


@dataclass(slots=True)
class Accepted:
    """An accepted request whose outcome is polled at ``/request/{id}``: a write
    (``/v2/log_async``, its result) or an export (``/v1/export``, its :class:`ResultSet`).

    Attributes:
        permission: what a key needs to poll it (``WRITE`` for a write, ``READ`` for an export).
    """

    tenant_id: str
    task: asyncio.Future[Any]
    permission: Permission = Permission.WRITE


class _Expiring(Generic[K, V]):
    """A bounded map whose entries expire ``ttl`` seconds after they were put."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def put(self, key: K, value: V) -> None:
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > _MAX_ENTRIES:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        got = self._items.get(key)
        if got is None:
            return None
        if got[0] < time.monotonic():
            del self._items[key]
            return None
        return got[1]


@dataclass(slots=True)
class PangeaState:
    """The dialect's memory, one per app."""

    requests: _Expiring[str, Accepted] = field(default_factory=lambda: _Expiring(REQUEST_TTL))
    roots: _Expiring[tuple[str, str], int] = field(default_factory=lambda: _Expiring(RESULT_TTL))

"""Deep pages in log order within arrival bounds (Kubiya's lists): past ``HOUR_JUMP_OFFSET``
the page is placed by arithmetic on ``seq`` around the gaps (events outside the bounds, pruned
events); every page still equals the brute-force page, arrival times out of log order and all."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

import trailkeep.service.events as service_events
import trailkeep.storage._select as select_module
from tests.storage.test_store import make_tenant, new_event
from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import And, Compare, Node, Values
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.stores import open_store
from trailkeep.storage._compile import DIALECTS
from trailkeep.storage._select import HOUR_JUMP_OFFSET, select_sql
from trailkeep.storage.base import Store

_EVENTS = 2_400
_BASE_NS = 1_795_000_000 * 10**9  # 2026-11-18
_ARRIVAL = ("received_at",)


def _arrival(ns: int) -> str:
    return service_events._format_ns(ns)


@pytest.fixture
def filled(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Store, list[StoredEvent]]]:
    """2,400 events in ``acme`` whose arrival times mostly grow with ``seq``, some far out of
    order (late, early, equal), 60 of them pruned at scattered positions; noise in ``other``."""
    store = open_store(store_url, sqlite_synchronous="NORMAL")
    rng = random.Random(13)
    clock = iter(range(10**9))

    def now() -> int:
        i = next(clock)
        if rng.random() < 0.03:  # out of log order by up to an hour either way
            return _BASE_NS + i * 10**9 + rng.randint(-3600, 3600) * 10**9
        if rng.random() < 0.02:  # the same instant as another event
            return _BASE_NS + 500 * 10**9
        return _BASE_NS + i * 10**9

    monkeypatch.setattr(service_events, "_now_ns", now)
    try:
        make_tenant(store)
        make_tenant(store, "other")
        store.append("other", [new_event() for _ in range(200)]).result()
        stamps = [f"2026-11-0{rng.randint(1, 9)}T00:00:00.000000Z" for _ in range(_EVENTS)]
        for i in rng.sample(range(_EVENTS), 60):
            stamps[i] = "2026-10-01T00:00:00.000000Z"
        events = [new_event(timestamp=ts, n=i) for i, ts in enumerate(stamps)]
        stored = [a.event for a in store.append("acme", events).result()]
        store.append("other", [new_event() for _ in range(200)]).result()
        pruned = store.prune("acme", "2026-10-02T00:00:00.000000Z", 1000, _arrival(_BASE_NS))
        assert pruned.count == 60
        gone = {e.id for e in stored if e.content["timestamp"] < "2026-10-02"}
        yield store, [e for e in stored if e.id not in gone]
    finally:
        store.close()


def _bounds(where: Node | None) -> list[Compare]:
    if where is None:
        return []
    nodes = where.children if isinstance(where, And) else (where,)
    return [n for n in nodes if isinstance(n, Compare)]


def _reference(events: list[StoredEvent], query: EventQuery) -> list[str]:
    ops = {">=": str.__ge__, ">": str.__gt__, "<": str.__lt__, "<=": str.__le__}
    bounds = _bounds(query.where)
    found = [e for e in events if all(ops[b.op](e.received_at, b.value) for b in bounds)]
    found.sort(key=lambda e: e.seq, reverse=query.sort is Sort.DESC)
    return [e.id for e in found[query.offset : query.offset + query.limit]]


def _wheres(events: list[StoredEvent]) -> list[Node | None]:
    arrivals = sorted(e.received_at for e in events)
    low, high = arrivals[300], arrivals[-250]
    return [
        None,
        Compare(_ARRIVAL, ">=", "2000-01-01T00:00:00.000000Z"),  # excludes nothing
        Compare(_ARRIVAL, ">=", low),
        Compare(_ARRIVAL, ">", low),
        And((Compare(_ARRIVAL, ">=", low), Compare(_ARRIVAL, "<", high))),
        And((Compare(_ARRIVAL, ">", low), Compare(_ARRIVAL, "<=", high))),
        Compare(_ARRIVAL, "<", arrivals[1500]),
        # Overlapping bounds: an event outside both is one gap.
        And((Compare(_ARRIVAL, ">=", low), Compare(_ARRIVAL, ">", arrivals[400]))),
        And((Compare(_ARRIVAL, "<", high), Compare(_ARRIVAL, "<=", arrivals[-260]))),
    ]


def _offsets(count: int) -> list[int]:
    return [HOUR_JUMP_OFFSET, HOUR_JUMP_OFFSET + 1, 1234, count - 7, count - 1, count, count + 5]


class TestPages:
    @pytest.mark.parametrize("sort", [pytest.param(s, id=s.value) for s in Sort])
    def test_equal_to_reference(self, filled: tuple[Store, list[StoredEvent]], sort: Sort) -> None:
        store, events = filled
        for where in _wheres(events):
            count = store.count("acme", EventQuery(where))
            for offset in _offsets(count):
                query = EventQuery(where, sort=sort, limit=9, offset=offset, by_seq=True)
                got = [e.id for e in store.select("acme", query)]
                assert got == _reference(events, query), (where, offset)

    def test_too_many_gaps_walks(
        self, filled: tuple[Store, list[StoredEvent]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past ``SEQ_JUMP_GAPS`` gaps the skipped rows are walked: the same pages."""
        monkeypatch.setattr(select_module, "SEQ_JUMP_GAPS", 20)
        store, events = filled
        for where in _wheres(events)[2:5]:
            for sort in Sort:
                query = EventQuery(where, sort=sort, limit=9, offset=1100, by_seq=True)
                got = [e.id for e in store.select("acme", query)]
                assert got == _reference(events, query), where

    def test_page_after_more_events(self, filled: tuple[Store, list[StoredEvent]]) -> None:
        store, events = filled
        later = [a.event for a in store.append("acme", [new_event() for _ in range(40)]).result()]
        events = events + later
        for where in _wheres(events):
            query = EventQuery(where, limit=50, offset=1500, by_seq=True)
            assert [e.id for e in store.select("acme", query)] == _reference(events, query)


class TestWhenItApplies:
    """Only a deep page in log order whose only conditions are arrival bounds."""

    arrival = Compare(_ARRIVAL, ">=", "2026-01-01T00:00:00.000000Z")

    @pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
    @pytest.mark.parametrize(
        ("query", "jumps"),
        [
            pytest.param(EventQuery(by_seq=True, offset=HOUR_JUMP_OFFSET), True, id="whole"),
            pytest.param(EventQuery(arrival, by_seq=True, offset=5000), True, id="arrival"),
            pytest.param(EventQuery(arrival, by_seq=True, offset=999), False, id="shallow"),
            pytest.param(EventQuery(arrival, offset=5000), False, id="time-order"),
            pytest.param(
                EventQuery(And((arrival, Values(("action",), ("a",)))), by_seq=True, offset=5000),
                False,
                id="condition",
            ),
            pytest.param(
                EventQuery(Compare(("timestamp",), ">=", "2026"), by_seq=True, offset=5000),
                False,
                id="event-time",
            ),
            pytest.param(
                EventQuery(arrival, by_seq=True, offset=5000, max_seq=9000), False, id="max-seq"
            ),
        ],
    )
    def test_jumps(self, dialect: str, query: EventQuery, jumps: bool) -> None:
        sql = select_sql("t", query, DIALECTS[dialect], "id").sql
        assert ("pruned_events" in sql) is jumps

"""Deep pages of the whole tenant: past ``HOUR_JUMP_OFFSET`` SQLite starts the walk at the hour
its hour totals name; every backend still gives the page a walk of every event gives."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import pytest

from tests.storage.reference import ref_select
from tests.storage.test_store import make_tenant, new_event
from trailkeep.model.event import StoredEvent
from trailkeep.query.ast import Values
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.stores import open_store
from trailkeep.storage._compile import DIALECTS
from trailkeep.storage._select import HOUR_JUMP_OFFSET, select_sql
from trailkeep.storage.base import Store

#: Events in the big tenant: enough for offsets past the jump in a dozen or so hours.
_EVENTS = 2_400


def _timestamp(rng: random.Random) -> str:
    # Few hours (so many events share one), a few shared seconds (ties broken by id), and
    # hours at day and month boundaries.
    hour = rng.choice(["2026-10-31T23", "2026-11-01T00", "2026-11-01T07", "2026-11-02T13"])
    if rng.random() < 0.5:
        hour = f"2026-11-0{rng.randint(3, 9)}T{rng.randint(0, 23):02d}"
    return f"{hour}:{rng.randint(0, 59):02d}:{rng.choice(['00', '30'])}.000000Z"


@pytest.fixture
def filled(store_url: str) -> Iterator[tuple[Store, list[StoredEvent]]]:
    store = open_store(store_url, sqlite_synchronous="NORMAL")
    try:
        rng = random.Random(13)
        make_tenant(store)
        make_tenant(store, "other")
        store.append("other", [new_event(timestamp=_timestamp(rng)) for _ in range(300)]).result()
        events = [
            new_event(
                timestamp=_timestamp(rng),
                n=i,
                action=rng.choice(["login", "logout", "read"]),
                outcome=rng.choice(["success", "success", "failure"]),
                **_target(rng),
            )
            for i in range(_EVENTS)
        ]
        stored = [a.event for a in store.append("acme", events).result()]
        store.append("other", [new_event(timestamp=_timestamp(rng)) for _ in range(300)]).result()
        yield store, stored
    finally:
        store.close()


def _offsets(events: list[StoredEvent], sort: Sort) -> list[int]:
    """Offsets at, just before and just after each hour's first event, the last event, and
    past the end, from ``HOUR_JUMP_OFFSET`` on."""
    hours = Counter(e.content["timestamp"][:13] for e in events)
    ordered = sorted(hours, reverse=sort is Sort.DESC)
    starts = list(accumulate((hours[h] for h in ordered), initial=0))
    near = {s + d for s in starts for d in (-1, 0, 1)} | {len(events) - 1, len(events) + 3}
    return sorted(n for n in near if n >= HOUR_JUMP_OFFSET)


class TestWholeTenant:
    """Each page equals the brute-force page, at hour boundaries and past the end."""

    @pytest.mark.parametrize("sort", [pytest.param(s, id=s.value) for s in Sort])
    def test_pages(self, filled: tuple[Store, list[StoredEvent]], sort: Sort) -> None:
        store, events = filled
        offsets = _offsets(events, sort)
        assert len(offsets) > 20
        for offset in offsets:
            query = EventQuery(sort=sort, limit=7, offset=offset)
            got = [e.id for e in store.select("acme", query)]
            assert got == [e.id for e in ref_select(events, query)], offset

    def test_page_after_more_events(self, filled: tuple[Store, list[StoredEvent]]) -> None:
        store, events = filled
        later = [new_event(timestamp="2026-11-01T00:30:30.000000Z") for _ in range(40)]
        events = events + [a.event for a in store.append("acme", later).result()]
        query = EventQuery(limit=50, offset=len(events) - 60)
        assert [e.id for e in store.select("acme", query)] == [
            e.id for e in ref_select(events, query)
        ]


#: Range edges: hour-aligned, inside an hour, in the same hour as another, past the data.
_EDGES = (
    None,
    "2026-11-01T00:00:00.000000Z",
    "2026-11-01T00:30:30.000000Z",
    "2026-11-01T07:15:00.000000Z",
    "2026-11-03T05:00:00.000000Z",
    "2026-11-05T12:34:56.000000Z",
    "2026-11-01T00:59:59.999999Z",
    "2026-12-31T00:00:00.000000Z",
)
_CONDITIONS = (
    None,
    Values(("action",), ("login",)),
    Values(("action",), ("login", "read")),
    Values(("outcome",), ("failure",)),
    Values(("action",), ("nothing",)),
    Values(("target", "type"), ("x",)),
)


class TestSelections:
    """Deep pages and totals of one action or outcome and of time ranges (which the hour
    totals count) equal the brute-force answer, at hour boundaries and edges."""

    def test_pages_and_totals(self, filled: tuple[Store, list[StoredEvent]]) -> None:
        store, events = filled
        rng = random.Random(21)
        for _ in range(60):
            start, end = rng.choice(_EDGES), rng.choice(_EDGES)
            query = EventQuery(rng.choice(_CONDITIONS), start, end, sort=rng.choice(list(Sort)))
            want = ref_select(events, dataclasses.replace(query, limit=10_000))
            assert store.count("acme", query) == len(want), query
            ids = [e.id for e in want]
            for offset in {HOUR_JUMP_OFFSET, HOUR_JUMP_OFFSET + 1, len(ids) - 2, len(ids) + 1}:
                if offset < HOUR_JUMP_OFFSET:
                    continue
                paged = dataclasses.replace(query, limit=5, offset=offset)
                got = [e.id for e in store.select("acme", paged)]
                assert got == ids[offset : offset + 5], (query, offset)


class TestWhenItApplies:
    """Deep pages in time order jump when the hour totals count their selection."""

    @pytest.mark.parametrize(
        ("query", "jumps"),
        [
            pytest.param(EventQuery(offset=HOUR_JUMP_OFFSET), True, id="deep"),
            pytest.param(EventQuery(offset=HOUR_JUMP_OFFSET, sort=Sort.ASC), True, id="asc"),
            pytest.param(EventQuery(offset=HOUR_JUMP_OFFSET - 1), False, id="shallow"),
            pytest.param(
                EventQuery(Values(("action",), ("a",)), offset=HOUR_JUMP_OFFSET),
                True,
                id="condition",
            ),
            pytest.param(
                EventQuery(Values(("actor", "id"), ("a",)), offset=HOUR_JUMP_OFFSET),
                False,
                id="actor",
            ),
            pytest.param(
                EventQuery(start="2026-11-01T00:00:00.000000Z", offset=HOUR_JUMP_OFFSET),
                True,
                id="range",
            ),
            pytest.param(
                EventQuery(
                    start="2026-11-01T00:00:00.000000Z",
                    end="2026-11-01T00:50:00.000000Z",
                    offset=HOUR_JUMP_OFFSET,
                ),
                False,
                id="one-hour",
            ),
            pytest.param(EventQuery(max_seq=10, offset=HOUR_JUMP_OFFSET), False, id="max-seq"),
            pytest.param(EventQuery(by_seq=True, offset=HOUR_JUMP_OFFSET), False, id="by-seq"),
            pytest.param(
                EventQuery(order_by=("action",), offset=HOUR_JUMP_OFFSET), False, id="order-by"
            ),
        ],
    )
    def test_sqlite(self, query: EventQuery, jumps: bool) -> None:
        assert ("facet_counts" in select_sql("t", query, DIALECTS["sqlite"], "id").sql) is jumps

    def test_postgres(self) -> None:
        query = EventQuery(offset=HOUR_JUMP_OFFSET)
        assert "hour_totals" in select_sql("t", query, DIALECTS["postgres"], "id").sql
        category = EventQuery(Values(("category",), ("a",)), offset=HOUR_JUMP_OFFSET)
        assert "hour_totals" not in select_sql("t", category, DIALECTS["postgres"], "id").sql
        shallow = EventQuery(offset=HOUR_JUMP_OFFSET - 1)
        assert "hour_totals" not in select_sql("t", shallow, DIALECTS["postgres"], "id").sql


def _pg_hours(url: str, tenant: str) -> tuple[dict[Any, int], dict[Any, int]]:
    """PostgreSQL's hour totals of a tenant (counts above 0) and the same counted from the
    events: per hour in all, per action and per outcome."""
    import psycopg

    with psycopg.connect(url) as conn:
        kept = conn.execute(
            "SELECT dim, value, hour, n FROM hour_totals WHERE tenant_id = %s AND n <> 0",
            (tenant,),
        ).fetchall()
        counted = conn.execute(
            "SELECT '_hour', '', left(ts, 13), count(*) FROM events WHERE tenant_id = %s"
            " GROUP BY 3 UNION ALL SELECT 'action', action, left(ts, 13), count(*) FROM events"
            " WHERE tenant_id = %s GROUP BY 2, 3 UNION ALL SELECT 'outcome', outcome,"
            " left(ts, 13), count(*) FROM events WHERE tenant_id = %s GROUP BY 2, 3"
            " UNION ALL SELECT 'target.type', target_type, left(ts, 13), count(*) FROM events"
            " WHERE tenant_id = %s AND target_type IS NOT NULL GROUP BY 2, 3",
            (tenant, tenant, tenant, tenant),
        ).fetchall()
    return {r[:3]: r[3] for r in kept}, {r[:3]: r[3] for r in counted}


def _target(rng: random.Random) -> dict[str, Any]:
    """A target of one of two types, or (a third of the time) none."""
    if rng.random() < 0.33:
        return {}
    return {"target": {"id": f"t{rng.randint(0, 9)}", "type": rng.choice("xy")}}


def _events(counted: dict[Any, int]) -> int:
    return sum(n for (dim, _, _), n in counted.items() if dim == "_hour")


class TestPostgresHourTotals:
    """PostgreSQL's ``hour_totals`` (migration 9) equal the events' count per hour after
    appends, repeats, redactions, pruning, a group redone job by job, and a migration."""

    @pytest.fixture
    def pg_store(self, pg_url: str) -> Iterator[tuple[Store, str]]:
        store = open_store(pg_url)
        try:
            make_tenant(store)
            make_tenant(store, "other")
            yield store, pg_url
        finally:
            store.close()

    def test_appends_repeats_prune(self, pg_store: tuple[Store, str]) -> None:
        store, url = pg_store
        rng = random.Random(9)
        for size in (1, 7, 150, 3):  # below and above COPY_AT_LEAST
            events = [
                new_event(timestamp=_timestamp(rng), action=rng.choice("ab"), **_target(rng))
                for _ in range(size)
            ]
            store.append("acme", events).result()
            store.append("other", [new_event(timestamp=_timestamp(rng)) for _ in range(2)]).result()
        keyed = [new_event(timestamp=_timestamp(rng), idempotency_key=f"k{i}") for i in range(5)]
        store.append("acme", keyed).result()
        store.append("acme", keyed).result()  # repeats: nothing new to count
        kept, counted = _pg_hours(url, "acme")
        assert _events(counted) == 166
        assert kept == counted
        store.prune("acme", "2026-11-03T00:00:00.000000Z", 40, "2026-12-01T00:00:00.000000Z")
        kept, counted = _pg_hours(url, "acme")
        assert _events(counted) == 126
        assert kept == counted
        assert _pg_hours(url, "other")[0] == _pg_hours(url, "other")[1]

    @pytest.mark.asyncio
    async def test_redactions(self, pg_store: tuple[Store, str]) -> None:
        from trailkeep.service.events import Limits
        from trailkeep.service.redaction import RedactionService

        store, url = pg_store
        rng = random.Random(3)
        events = [new_event(timestamp=_timestamp(rng), **_target(rng)) for _ in range(60)]
        stored = [a.event for a in store.append("acme", events).result()]
        service = RedactionService(store, Limits())
        for event in [e for e in stored if "target" in e.content][:5]:
            await service.redact("acme", event.id, ["target.type"], "tkc_admin")
        kept, counted = _pg_hours(url, "acme")
        assert _events(counted) == 65  # and the five erasure records
        assert kept == counted

    def test_group_redone_job_by_job(
        self, pg_store: tuple[Store, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from trailkeep.storage import _postgres_writer

        store, url = pg_store

        def refuse(*args: object, **kwargs: object) -> None:
            raise _postgres_writer._Isolate("forced")

        monkeypatch.setattr(_postgres_writer.GroupWriter, "_together", refuse)
        rng = random.Random(4)
        store.append("acme", [new_event(timestamp=_timestamp(rng)) for _ in range(120)]).result()
        with pytest.raises(Exception, match="tenant"):
            store.append("nobody", [new_event(timestamp=_timestamp(rng))]).result()
        kept, counted = _pg_hours(url, "acme")
        assert _events(counted) == 120
        assert kept == counted

    def test_migration_counts_stored_events(
        self, pg_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import psycopg

        from trailkeep.storage import _postgres_writer, postgres
        from trailkeep.storage.postgres_schema import MIGRATIONS

        assert [v for v, _, _ in MIGRATIONS][8] == 9
        # A database at migration 8, filled by a writer that keeps no hour totals.
        monkeypatch.setattr(postgres, "MIGRATIONS", MIGRATIONS[:8])
        monkeypatch.setattr(
            _postgres_writer, "_ADD_HOURS", "SELECT %s::text[], %s, %s, %s, %s::int8[]"
        )
        store = open_store(pg_url)
        try:
            make_tenant(store)
            rng = random.Random(5)
            store.append(
                "acme", [new_event(timestamp=_timestamp(rng)) for _ in range(300)]
            ).result()
        finally:
            store.close()
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT to_regclass('hour_totals')").fetchone() == (None,)
        monkeypatch.undo()
        store = open_store(pg_url)
        try:
            kept, counted = _pg_hours(pg_url, "acme")
            assert _events(counted) == 300
            assert kept == counted
            store.append("acme", [new_event(timestamp=_timestamp(rng)) for _ in range(10)]).result()
            kept, counted = _pg_hours(pg_url, "acme")
            assert kept == counted
        finally:
            store.close()

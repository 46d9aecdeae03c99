"""SQLite-only: which plan each facet query takes, that index walks never sort, and that the
migrations give existing databases the indexes and exact hour rollups.

``test_facets.py`` proves every plan exact on every backend; these pin the SQLite plans
themselves, which have no PostgreSQL counterpart (it groups the selection directly).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.storage.queries import event_query
from tests.storage.test_facets import RANGES, Event, _assert_exact, _events, _expected
from tests.storage.test_store import make_tenant, new_event
from trailkeep.query.filters import EventQuery
from trailkeep.service.stores import open_store
from trailkeep.storage._sqlite_sql import FACET_INDEXES, sqlite_facets

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """A database of events, read by each test through its own connection."""
    path = tmp_path_factory.mktemp("sqlite-facets") / "store.db"
    store = open_store(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    make_tenant(store)
    appended = store.append("acme", [new_event(**e) for e in _events(400)]).result()
    store.close()
    return path, [a.event.to_wire() for a in appended]


def _traced(path: Path, query: EventQuery) -> list[str]:
    """The statements one facet request runs, values expanded."""
    conn = sqlite3.connect(path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        sqlite_facets(conn, "acme", query, 5)
    finally:
        conn.close()
    return [s for s in statements if s.startswith("SELECT")]


class TestPlans:
    """Each kind of query reads what its plan says, and only that."""

    def test_time_range_reads_rollups_only(self, db: tuple[Path, list[Event]]) -> None:
        statements = _traced(db[0], EventQuery(start="2026-11-02T00:00:00.000000Z"))
        assert all("facet_counts" in s for s in statements)

    def test_lone_filter_walks_its_index_only(self, db: tuple[Path, list[Event]]) -> None:
        statements = _traced(db[0], event_query({"action": ["login"]}))
        events = [s for s in statements if "FROM events" in s]
        assert len(events) == 2  # the low-cardinality columns, then actor_id
        assert all("INDEXED BY events_facet_action" in s for s in events)
        assert all("action = 'login'" in s for s in events)

    def test_search_folds_into_the_index_plan(self, db: tuple[Path, list[Event]]) -> None:
        query = event_query(q="outcome:failure", now=NOW)
        events = [s for s in _traced(db[0], query) if "FROM events" in s]
        assert len(events) == 2
        assert all("INDEXED BY events_facet_outcome" in s for s in events)

    def test_majority_walks_the_rest(self, db: tuple[Path, list[Event]]) -> None:
        statements = _traced(db[0], event_query({"outcome": ["success"]}))
        walks = [s for s in statements if "FROM events" in s]
        assert len(walks) == 2
        for walk in walks:
            assert "INDEXED BY events_facet_outcome" in walk
            assert "'failure'" in walk
            assert "'unknown'" in walk
            assert "'success'" not in walk

    def test_several_filters_take_hours_from_the_index(self, db: tuple[Path, list[Event]]) -> None:
        query = event_query({"action": ["login"], "outcome": ["failure"]})
        events = [s for s in _traced(db[0], query) if "FROM events" in s]
        assert len(events) == 3  # hours, the low-cardinality columns, actor_id
        assert all("INDEXED BY events_facet_action" in s for s in events)

    def test_category_walks_a_whole_index(self, db: tuple[Path, list[Event]]) -> None:
        query = event_query({"category": ["users"]})
        events = [s for s in _traced(db[0], query) if "FROM events" in s]
        assert any("INDEXED BY events_facet_action" in s for s in events)

    @pytest.mark.parametrize(
        ("query", "plan"),
        [
            pytest.param(event_query({"actor.id": ["u3"]}), "events_actor", id="actor"),
            pytest.param(
                event_query(q="denied", now=NOW),
                "INTEGER PRIMARY KEY",
                id="free-text-by-rowid",
            ),
        ],
    )
    def test_scan_reads_through_the_selective_index(
        self, db: tuple[Path, list[Event]], query: EventQuery, plan: str
    ) -> None:
        (scan,) = [s for s in _traced(db[0], query) if "FROM events" in s]
        conn = sqlite3.connect(db[0])
        try:
            steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {scan}")]
        finally:
            conn.close()
        assert plan in steps[0]
        assert "events_facet" not in steps[0]


class TestIndexWalk:
    """A walk groups the low-cardinality columns in index order, so SQLite counts them as it
    goes (no sort), and never reads the table; actor_id alone takes a sort."""

    @pytest.mark.parametrize(
        "filters",
        [
            pytest.param({"action": ["login"]}, id="one-value"),
            pytest.param({"action": ["login", "logout"]}, id="in-list"),
            pytest.param({"outcome": ["failure"]}, id="outcome"),
            pytest.param({"outcome": ["failure"], "action": ["login"]}, id="two-filters"),
        ],
    )
    @pytest.mark.parametrize(("start", "end"), RANGES[:3])
    def test_no_sort(
        self,
        db: tuple[Path, list[Event]],
        filters: dict[str, list[str]],
        start: str | None,
        end: str | None,
    ) -> None:
        statements = _traced(db[0], event_query(filters, start, end))
        (walk, actors) = [s for s in statements if "count(*)" in s and "substr" not in s]
        conn = sqlite3.connect(db[0])
        try:
            steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {walk}")]
            actor_steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {actors}")]
        finally:
            conn.close()
        assert steps[0].startswith("SEARCH events USING COVERING INDEX events_facet_")
        assert not [s for s in steps if "TEMP B-TREE" in s]
        assert actors.startswith("SELECT actor_id, count(*)")
        assert actor_steps[0].startswith("SEARCH events USING COVERING INDEX events_facet_")

    @pytest.mark.parametrize("leading", list(FACET_INDEXES))
    def test_indexes_match_the_schema(self, db: tuple[Path, list[Event]], leading: str) -> None:
        name, columns = FACET_INDEXES[leading]
        conn = sqlite3.connect(db[0])
        try:
            indexed = [r[2] for r in conn.execute(f"PRAGMA index_info({name})")]
        finally:
            conn.close()
        assert indexed == ["tenant_id", *columns, "ts", "actor_id"]
        assert columns[0] == leading


class TestMigrations:
    """A database from before migrations 4 and 5 gets the indexes and exact hour rollups."""

    @pytest.mark.parametrize(("start", "end"), RANGES)
    def test_stale_hour_rollups_recounted(
        self, tmp_path: Path, start: str | None, end: str | None
    ) -> None:
        path = tmp_path / "store.db"
        store = open_store(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
        make_tenant(store)
        appended = store.append("acme", [new_event(**e) for e in _events(200)]).result()
        store.close()
        stored = [a.event.to_wire() for a in appended]
        conn = sqlite3.connect(path)
        with conn:  # as a database that never had migrations 4 and 5, hour rows gone astray
            conn.execute("DROP INDEX events_facet_action")
            conn.execute("DROP INDEX events_facet_outcome")
            conn.execute("DELETE FROM schema_migrations WHERE version BETWEEN 4 AND 6")
            conn.execute(
                "DELETE FROM facet_counts WHERE length(period) = 13 AND dim <> '_hour'"
                " AND period LIKE '%T1_'"
            )
            conn.execute(
                "UPDATE facet_counts SET n = n + 5 WHERE length(period) = 13"
                " AND dim = 'actor.id' AND period LIKE '%T0_'"
            )
        conn.close()
        store = open_store(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
        try:
            for filters in ({}, {"action": ["login"]}, {"outcome": ["success"]}):

                def keep(e: Event, filters: dict[str, list[str]] = filters) -> bool:
                    return all(e[k] in v for k, v in filters.items())

                got = store.facets("acme", event_query(filters, start, end), 5)
                _assert_exact(got, _expected(stored, start, end, keep))
        finally:
            store.close()

    def test_migration_4_indexes_rebuilt_in_time_order(self, tmp_path: Path) -> None:
        path = tmp_path / "store.db"
        open_store(f"sqlite:///{path}", sqlite_synchronous="NORMAL").close()
        conn = sqlite3.connect(path)
        with conn:  # as migration 4 left them: actor_id before ts
            for name, columns in FACET_INDEXES.values():
                conn.execute(f"DROP INDEX {name}")
                conn.execute(
                    f"CREATE INDEX {name} ON events(tenant_id, {', '.join(columns)}, actor_id, ts)"
                )
            conn.execute("DELETE FROM schema_migrations WHERE version = 6")
        conn.close()
        open_store(f"sqlite:///{path}", sqlite_synchronous="NORMAL").close()
        conn = sqlite3.connect(path)
        try:
            for name, columns in FACET_INDEXES.values():
                indexed = [r[2] for r in conn.execute(f"PRAGMA index_info({name})")]
                assert indexed == ["tenant_id", *columns, "ts", "actor_id"]
        finally:
            conn.close()

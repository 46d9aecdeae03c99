"""SQLite's query indexes (migration 8): the ``metadata`` columns hold exactly what
``json_extract`` reads, and the dialects' hot reads walk an index rather than the table."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.storage.test_store import make_tenant, new_event
from trailkeep.query.ast import And, Compare, Node, Values
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.stores import open_store
from trailkeep.storage._compile import STORE_DIALECTS
from trailkeep.storage._select import count_sql, select_sql
from trailkeep.storage.sqlite_schema import METADATA_COLUMNS

_DIALECT = STORE_DIALECTS["sqlite"]

#: ``metadata`` values of every JSON kind, and keys where the byte check alone would mislead.
_METADATA: list[Any] = [
    {"org_id": "o-1", "group_id": "admins"},
    {"org_id": 7, "scope": 1.5, "result": True, "token_id": False, "policy_name": None},
    {"org_id": 2**53 - 1, "decision_id": -0.0, "override_id": 1e300},
    {"org_id": ["o-1", 2], "group_id": {"x": "y"}, "category_name": []},
    {"org_id": 'q"uote\\d \u00e9 \u2028 \U0001f600', "model": "\x00nul"},
    {"other": "org_id", "org_id_x": "no", "n": {"org_id": "nested"}},
    {"ORG_ID": "case", "connector_id": ""},
    "org_id",
    ["org_id", {"org_id": "in an array"}],
    5,
    None,
    {},
]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    try:
        make_tenant(store)
        events = [new_event(action="a", metadata=m) for m in _METADATA]
        events.append(new_event(action="a"))
        store.append("acme", events).result()
    finally:
        store.close()
    conn = sqlite3.connect(path)
    yield conn
    conn.close()


class TestMetadataColumns:
    """Each ``meta_<key>`` is ``json_extract(body, '$.metadata.<key>')``, value and type."""

    @pytest.mark.parametrize(
        "column",
        [pytest.param(c, id=c) for c in METADATA_COLUMNS.values()],
    )
    def test_equal_to_json_extract(self, db: sqlite3.Connection, column: str) -> None:
        key = column.removeprefix("meta_")
        rows = db.execute(
            f"SELECT {column}, typeof({column}),"
            f' json_extract(CAST(body AS TEXT), \'$."metadata"."{key}"\'),'
            f' typeof(json_extract(CAST(body AS TEXT), \'$."metadata"."{key}"\'))'
            " FROM events ORDER BY seq"
        ).fetchall()
        assert len(rows) == len(_METADATA) + 1
        assert [r[:2] for r in rows] == [r[2:] for r in rows]

    def test_some_values_are_indexed(self, db: sqlite3.Connection) -> None:
        found = db.execute(
            "SELECT count(*) FROM events INDEXED BY events_meta_org_id"
            " WHERE tenant_id = 'acme' AND meta_org_id = 'o-1'"
        ).fetchone()
        assert found == (1,)


def _plan(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> str:
    return "\n".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def _page(where: Node | None, **kwargs: Any) -> EventQuery:
    return EventQuery(where=where, **kwargs)


_EMAIL_AND_ACTION: Node = Values(("actor", "email"), ("u@example.com",))


class TestPlans:
    """The vendor dialects' hot shapes, as the query planner runs them."""

    def test_email_and_action_page_and_total(self, db: sqlite3.Connection) -> None:
        where = And((_EMAIL_AND_ACTION, Values(("action",), ("login",))))
        page = select_sql("acme", _page(where, limit=50), _DIALECT, "id")
        total = count_sql("acme", _page(where), _DIALECT)
        assert "INDEX events_email (tenant_id=? AND actor_email=? AND action=?)" in _plan(
            db, page.sql, page.params
        )
        assert "COVERING INDEX events_email" in _plan(db, total.sql, total.params)

    @pytest.mark.parametrize("sort", [pytest.param(s, id=s.value) for s in Sort])
    def test_kind_ordered_by_actor_walks_the_actor_index(
        self, db: sqlite3.Connection, sort: Sort
    ) -> None:
        query = _page(Values(("target", "type"), ("document",)), order_by=("actor", "id"))
        page = select_sql("acme", dataclasses.replace(query, sort=sort), _DIALECT, "id")
        plan = _plan(db, page.sql, page.params)
        assert "INDEX events_actor (tenant_id=?)" in plan
        assert "TEMP B-TREE" not in plan

    def test_deep_page_in_log_order_bounded_by_arrival(self, db: sqlite3.Connection) -> None:
        arrived = Compare(("received_at",), ">=", "2000-01-01T00:00:00Z")
        page = select_sql("acme", _page(arrived, by_seq=True, offset=5000), _DIALECT, "id")
        assert "COVERING INDEX events_seq_arrival" in _plan(db, page.sql, page.params)


@pytest.mark.postgres
class TestPostgresPlans:
    """PostgreSQL's ``metadata`` expression indexes match the SQL the compiler writes."""

    @pytest.fixture
    def pg(self, pg_url: str) -> Iterator[Any]:
        import psycopg

        store = open_store(pg_url)
        try:
            make_tenant(store)
            events = [new_event(action="a", metadata={"model": f"m{i % 50}"}) for i in range(400)]
            store.append("acme", events).result()
        finally:
            store.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ANALYZE events")
            conn.execute("SET enable_seqscan = off")
            yield conn

    @pytest.mark.parametrize(
        "key", [pytest.param(k, id=k) for k in ("model", "org_id", "policy_name")]
    )
    def test_values_read_the_index(self, pg: Any, key: str) -> None:
        dialect = STORE_DIALECTS["postgres"]
        query = EventQuery(Values(("metadata", key), ("m7", 7)), limit=5)
        page = select_sql("acme", query, dialect, "events.id")
        plan = "\n".join(r[0] for r in pg.execute(f"EXPLAIN {page.sql}", page.params))
        assert f"events_meta_{key}" in plan
        if key == "model":
            assert len(pg.execute(page.sql, page.params).fetchall()) == 5

    def test_count_reads_the_index_alone(self, pg: Any) -> None:
        # Migration 9's stored column: the count needs no row (an index-only scan once the
        # pages are all-visible), where migration 3's expression index read every match's row.
        pg.execute("VACUUM events")
        dialect = STORE_DIALECTS["postgres"]
        total = count_sql("acme", EventQuery(Values(("metadata", "model"), ("m7",))), dialect)
        plan = "\n".join(r[0] for r in pg.execute(f"EXPLAIN {total.sql}", total.params))
        assert "Index Only Scan using events_meta_model" in plan
        assert pg.execute(total.sql, total.params).fetchone() == (8,)


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_postgres_metadata_column_follows_redaction(pg_url: str) -> None:
    """The stored column is the body's value: erasing ``metadata.model`` takes the event out
    of that value's matches (the server recomputes the column from the redacted body)."""
    from trailkeep.service.events import Limits
    from trailkeep.service.redaction import RedactionService

    store = open_store(pg_url)
    try:
        make_tenant(store)
        events = [new_event(metadata={"model": "gpt-4o", "n": i}) for i in range(3)]
        stored = [a.event for a in store.append("acme", events).result()]
        query = EventQuery(Values(("metadata", "model"), ("gpt-4o",)), limit=10)
        assert store.count("acme", query) == 3
        await RedactionService(store, Limits()).redact(
            "acme", stored[1].id, ["metadata.model"], "tkc_admin"
        )
        assert store.count("acme", query) == 2
        assert stored[1].id not in {e.id for e in store.select("acme", query)}
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("sort", [pytest.param(s, id=s.value) for s in Sort])
def test_postgres_order_by_actor_walks_the_actor_index(pg_url: str, sort: Sort) -> None:
    """Migration 9's events_actor (NULLS FIRST) is the order of a page ordered by actor, either
    way, missing actors first ascending and last descending: no sort of the matches."""
    import psycopg

    store = open_store(pg_url)
    try:
        make_tenant(store)
        events = [
            new_event(target={"id": f"t{i}", "type": "document"}, actor={"id": f"u{i % 7}"})
            if i % 5
            else new_event(target={"id": f"t{i}", "type": "document"})
            for i in range(300)
        ]
        store.append("acme", events).result()
        query = EventQuery(
            Values(("target", "type"), ("document",)), order_by=("actor", "id"), sort=sort
        )
        got = [e.id for e in store.select("acme", dataclasses.replace(query, limit=400))]
        actors = {e.id: e.content.get("actor", {}).get("id") for e in store.select(
            "acme", EventQuery(limit=400))}  # fmt: skip
        keys = [(actors[i] is not None, actors[i] or "") for i in got]
        assert keys == sorted(keys, reverse=sort is Sort.DESC)
        assert keys[0][0] is (sort is Sort.DESC)
    finally:
        store.close()
    page = select_sql("acme", dataclasses.replace(query, limit=5), STORE_DIALECTS["postgres"], "id")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE events")
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {page.sql}", page.params))
    assert "events_actor" in plan
    assert "Sort" not in plan

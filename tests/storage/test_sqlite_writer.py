"""SQLite's group commit: one statement per table for a whole group, a failing job alone."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage.test_store import make_tenant, new_event
from trailkeep.errors import ConflictError, UnavailableError
from trailkeep.service.stores import open_store
from trailkeep.storage._sqlite_sql import insert_many
from trailkeep.storage._sqlite_writer import _AppendJob
from trailkeep.storage.sqlite import SQLiteStore


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    assert isinstance(store, SQLiteStore)
    yield store
    store.close()


def _statements(conn: sqlite3.Connection) -> list[str]:
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    return seen


def _inserts(seen: list[str], table: str) -> int:
    return sum(1 for s in seen if s.startswith(f"INSERT INTO {table} ("))


def test_a_group_of_single_events_writes_each_table_once(sqlite_store: SQLiteStore) -> None:
    make_tenant(sqlite_store)
    make_tenant(sqlite_store, "beta")
    jobs = [
        _AppendJob("acme" if i % 3 else "beta", [new_event(actor={"id": f"u{i}"})])
        for i in range(32)
    ]
    seen = _statements(sqlite_store._writer_conn)
    sqlite_store._commit_group(jobs)
    sqlite_store._writer_conn.set_trace_callback(None)
    seqs: dict[str, list[int]] = {"acme": [], "beta": []}
    for job in jobs:
        (got,) = job.future.result()
        seqs[job.tenant_id].append(got.event.seq)
    assert seqs == {"acme": list(range(21)), "beta": list(range(11))}
    # 32 events, two tenants: one statement per table (32 is a power of two; 21 and 11 of
    # the trees' rows are not, hence "at most" a few shapes there), no savepoint.
    assert _inserts(seen, "events") == 1
    assert _inserts(seen, "events_fts") == 1
    assert _inserts(seen, "facet_counts") <= 4
    assert not any(s.startswith("SAVEPOINT") for s in seen)
    # The rollups counted every event once, per tenant.
    total = dict(
        sqlite_store._read(
            lambda c: c.execute(
                "SELECT tenant_id, sum(n) FROM facet_counts WHERE dim = '_hour' GROUP BY 1"
            ).fetchall()
        )
    )
    assert total == {"acme": 21, "beta": 11}


def test_a_job_whose_write_fails_fails_alone(sqlite_store: SQLiteStore) -> None:
    """A duplicate event id fails the group's one-pass write: the group is written again job
    by job, and only the offending job fails; the others are sequenced without a gap."""
    make_tenant(sqlite_store)
    (first,) = sqlite_store.append("acme", [new_event()]).result()
    twin = dataclasses.replace(new_event(), id=first.event.id)
    jobs = [
        _AppendJob("acme", [new_event()]),
        _AppendJob("acme", [twin]),
        _AppendJob("acme", [new_event(), new_event()]),
    ]
    sqlite_store._commit_group(jobs)
    assert [a.event.seq for a in jobs[0].future.result()] == [1]
    with pytest.raises(ConflictError):
        jobs[1].future.result()
    assert [a.event.seq for a in jobs[2].future.result()] == [2, 3]
    assert sqlite_store.log_size("acme") == 4
    count = sqlite_store._read(lambda c: c.execute("SELECT count(*) FROM events_fts").fetchone())
    assert count[0] == 4


def test_insert_many_uses_a_few_fixed_statement_shapes(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    seen = _statements(conn)
    insert_many(conn, "t", ("a", "b"), [(i, str(i)) for i in range(500)])
    insert_many(conn, "t", ("a", "b"), [(i, str(i)) for i in range(500, 2_600)])
    sizes = [s.count("), (") + 1 for s in seen]  # the trace shows values bound
    assert sizes == [256, 128, 64, 32, 16, 4, 1024, 1024, 32, 16, 4]
    assert [r[0] for r in conn.execute("SELECT a FROM t ORDER BY rowid")] == list(range(2_600))


def test_an_unexpected_failure_fails_its_group_not_the_writer(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in writing one group answers that group's writes with the failure (nothing of
    them stored) and leaves the writer thread taking the writes behind it."""
    make_tenant(sqlite_store)
    real = sqlite_store._commit_group
    calls = iter([True])

    def once_broken(jobs: list[object]) -> None:
        if next(calls, False):
            sqlite_store._writer_conn.execute("BEGIN")
            raise RuntimeError("a bug")
        real(jobs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_store, "_commit_group", once_broken)
    with pytest.raises(UnavailableError, match="a bug"):
        sqlite_store.append("acme", [new_event()]).result(timeout=60)
    stored = sqlite_store.append("acme", [new_event()]).result(timeout=60)
    assert stored[0].event.seq == 0
    assert sqlite_store.log_size("acme") == 1

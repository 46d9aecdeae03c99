"""The contract of retention on every backend: ``Store.prune`` deletes content in small
transactions and keeps tombstones and leaves, and the tree-apart-from-content migration keeps
every proof of a database created at the previous schema."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trailkeep.errors import UnavailableError
from trailkeep.merkle import RFC9162, CompactRange
from trailkeep.model.tenant import Tenant
from trailkeep.query.filters import EventQuery
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.retention import RetentionService
from trailkeep.service.stores import open_store
from trailkeep.storage._sqlite_prune import CHECKPOINT_EVENTS, STEP, WalCheckpoints, prune_batch
from trailkeep.storage._sqlite_writer import _AppendJob
from trailkeep.storage.base import Store

EVENTS = 40
CUTOFF = "2021-01-01T00:00:00.000000Z"


def _content(i: int) -> dict[str, Any]:
    year = 2020 if i % 4 else 2025  # every fourth event is recent
    return {
        "timestamp": f"{year}-03-{1 + i % 20:02d}T08:00:{i % 60:02d}Z",
        "action": f"a.{i % 3}",
        "category": "c",
        "actor": {"id": f"u-{i % 4}"},
        "message": f"note {i}",
    }


def _fill(store: Store, tenant: str = "acme", n: int = EVENTS) -> list[Any]:
    store.create_tenant(Tenant(tenant, "2026-01-01T00:00:00.000000Z", {}))
    events = [prepare_event(_content(i), Limits()) for i in range(n)]
    return [a.event for a in store.append(tenant, events).result()]


def _expired(events: list[Any]) -> list[Any]:
    return [e for e in events if e.content["timestamp"] < CUTOFF]


class TestPrune:
    """A prune batch deletes the oldest expired events' content and keeps id, seq and leaf."""

    def test_batches_oldest_first_until_nothing_is_left(self, store: Store) -> None:
        events = _fill(store)
        gone = sorted(_expired(events), key=lambda e: (e.content["timestamp"], e.id))
        seen: list[int] = []
        while True:
            batch = store.prune("acme", CUTOFF, 7, "2026-02-01T00:00:00.000000Z")
            if not batch.count:
                break
            assert batch.count <= 7
            chunk = [e.seq for e in gone[len(seen) : len(seen) + batch.count]]
            assert (batch.first_seq, batch.last_seq) == (min(chunk), max(chunk))
            seen.extend(chunk)
        assert seen == [e.seq for e in gone]

    def test_tombstones_leaves_and_reads(self, store: Store) -> None:
        events = _fill(store)
        store.prune("acme", CUTOFF, 1000, "2026-02-01T00:00:00.000000Z")
        gone = {e.seq for e in _expired(events)}
        for event in events:
            pruned = store.get_pruned("acme", event.id)
            if event.seq in gone:
                assert store.get_event("acme", event.id) is None
                assert store.get_evidence("acme", event.id) is None
                assert pruned is not None
                assert (pruned.seq, pruned.leaf_hash) == (event.seq, event.leaf_hash)
            else:
                assert pruned is None
                assert store.get_event("acme", event.id) == event
        assert store.leaf_hashes("acme", 0, EVENTS) == [e.leaf_hash for e in events]
        assert [p.seq for p in store.scan_pruned("acme", 0, EVENTS)] == sorted(gone)
        assert [e.event.seq for e in store.scan_evidence("acme", 0, EVENTS)] == [
            e.seq for e in events if e.seq not in gone
        ]

    @pytest.mark.parametrize(
        "query",
        [
            pytest.param(EventQuery(), id="everything"),
            pytest.param(EventQuery(after_seq=5), id="after-seq"),
            pytest.param(EventQuery(max_seq=20), id="max-seq"),
            pytest.param(EventQuery(after_seq=3, max_seq=30), id="seq-range"),
            pytest.param(EventQuery(start="2020-03-05T00:00:00.000000Z"), id="since"),
        ],
    )
    def test_counts_and_lists_equal_the_reference(self, store: Store, query: EventQuery) -> None:
        events = _fill(store)
        store.prune("acme", CUTOFF, 1000, "2026-02-01T00:00:00.000000Z")
        kept = [e for e in events if e.content["timestamp"] >= CUTOFF]
        low = -1 if query.after_seq is None else query.after_seq
        high = EVENTS if query.max_seq is None else query.max_seq
        since = query.start or ""
        expected = [e for e in kept if low < e.seq <= high and e.content["timestamp"] >= since]
        assert store.count("acme", query) == len(expected)
        listed = store.select("acme", EventQuery(query.where, query.start, limit=1000))
        assert {e.id for e in listed} == {e.id for e in kept if e.content["timestamp"] >= since}
        facets = store.facets("acme", EventQuery(), 10)
        assert facets.total == len(kept)

    def test_other_tenants_are_untouched(self, store: Store) -> None:
        _fill(store)
        others = _fill(store, "globex")
        store.prune("acme", CUTOFF, 1000, "2026-02-01T00:00:00.000000Z")
        assert store.count("globex", EventQuery()) == EVENTS
        assert all(store.get_event("globex", e.id) == e for e in others)


class TestSQLiteYields:
    """SQLite's single writer: a prune batch gives way, a step at a time, to waiting writes."""

    @pytest.fixture
    def db(self, tmp_path: Path) -> Iterator[tuple[Any, sqlite3.Connection, int]]:
        url = f"sqlite:///{tmp_path / 'yield.db'}"
        store = open_store(url, sqlite_synchronous="NORMAL")
        events = _fill(store, n=4 * STEP * 4 // 3 + 4)
        conn = sqlite3.connect(tmp_path / "yield.db", isolation_level=None)
        yield store, conn, len(_expired(events))
        conn.close()
        store.close()

    def test_a_waiting_write_ends_the_batch_after_a_step(
        self, db: tuple[Any, sqlite3.Connection, int]
    ) -> None:
        _, conn, expired = db
        assert expired > 3 * STEP
        conn.execute("BEGIN IMMEDIATE")
        looks: list[int] = []
        batch = prune_batch(conn, "acme", CUTOFF, 3 * STEP, "2026-02-01T00:00:00.000000Z",
                            lambda: looks.append(1) or len(looks) == 2)  # fmt: skip
        conn.execute("COMMIT")
        assert (batch.count, batch.more) == (2 * STEP, True)
        conn.execute("BEGIN IMMEDIATE")
        rest = prune_batch(conn, "acme", CUTOFF, 10_000, "2026-02-01T00:00:00.000000Z",
                           lambda: False)  # fmt: skip
        conn.execute("COMMIT")
        assert (rest.count, rest.more) == (expired - 2 * STEP, False)
        assert batch.last_seq is not None
        assert rest.first_seq is not None

    def test_a_write_waiting_from_the_start_waits_for_one_event(
        self, db: tuple[Any, sqlite3.Connection, int]
    ) -> None:
        # The step is one event: a write that waits when the batch begins waits for one
        # deletion (the least that keeps a run going), not for five.
        _, conn, expired = db
        assert expired > 3
        conn.execute("BEGIN IMMEDIATE")
        batch = prune_batch(conn, "acme", CUTOFF, 1000, "2026-02-01T00:00:00.000000Z",
                            lambda: True)  # fmt: skip
        conn.execute("COMMIT")
        assert (batch.count, batch.more, batch.uncontended) == (1, True, False)

    @pytest.mark.parametrize(
        ("looks_true", "uncontended"),
        [
            pytest.param(set(), True, id="nobody-waited"),
            pytest.param({1}, False, id="a-write-waited-mid-batch"),
            pytest.param({3}, False, id="a-write-waits-at-its-end"),
        ],
    )
    def test_a_batch_says_whether_a_write_waited_for_it(
        self, db: tuple[Any, sqlite3.Connection, int], looks_true: set[int], uncontended: bool
    ) -> None:
        # A batch of 3 looks at the queue after its first and second events and once more
        # after its rollups and tombstones: ``uncontended`` only when every look found none.
        _, conn, _ = db
        looks: list[int] = []

        def waiting() -> bool:
            looks.append(1)
            return len(looks) in looks_true

        conn.execute("BEGIN IMMEDIATE")
        batch = prune_batch(conn, "acme", CUTOFF, 3, "2026-02-01T00:00:00.000000Z", waiting)
        conn.execute("COMMIT")
        assert batch.uncontended is uncontended
        assert batch.count == (1 if looks_true == {1} else 3)

    def test_a_batch_without_a_look_at_the_queue_is_not_uncontended(
        self, db: tuple[Any, sqlite3.Connection, int]
    ) -> None:
        _, conn, _ = db
        conn.execute("BEGIN IMMEDIATE")
        batch = prune_batch(conn, "acme", CUTOFF, 3, "2026-02-01T00:00:00.000000Z")
        conn.execute("COMMIT")
        assert (batch.count, batch.uncontended) == (3, False)

    def test_a_run_that_gives_way_still_prunes_everything(
        self, db: tuple[Any, sqlite3.Connection, int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store, _, expired = db
        monkeypatch.setattr(store, "_writes_waiting", lambda: True)  # always someone waiting
        store.update_tenant_settings("acme", {"retention_days": 365})
        run = RetentionService(store, batch_size=3 * STEP, pause=0).prune_tenant(
            "acme", now=datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=365)
        )
        assert (run.done, run.count) == (True, expired)
        assert len(store.scan_pruned("acme", 0, 10_000)) == expired


class TestSQLiteWriterForPrunes:
    """How the writer commits a prune batch: giving way to a write grouped behind it, without
    an fsync of its own, and with the WAL checkpointed off the writer thread."""

    @pytest.fixture
    def sqlite_store(self, tmp_path: Path) -> Iterator[Any]:
        store = open_store(f"sqlite:///{tmp_path / 'writer.db'}")  # synchronous FULL
        _fill(store, n=4 * STEP * 4 // 3 + 4)
        yield store
        store.close()

    def test_a_write_grouped_behind_the_batch_ends_it_after_a_step(self, sqlite_store: Any) -> None:
        # A prune job and an ingest taken into one group: the queue is empty meanwhile, so
        # only the group itself shows that the ingest waits for the batch.
        store = sqlite_store
        done: list[Any] = []

        def delete(conn: sqlite3.Connection) -> None:
            done.append(prune_batch(conn, "acme", CUTOFF, 3 * STEP, "2026-02-01T00:00:00.000000Z",
                                    store._writes_waiting))  # fmt: skip

        ingest = _AppendJob("acme", [prepare_event(_content(1000), Limits())])
        store._commit_group([_AppendJob("acme", [], before=delete), ingest])
        assert (done[0].count, done[0].more) == (STEP, True)
        assert len(ingest.future.result()) == 1
        assert not store._writes_waiting()

    @pytest.mark.parametrize("prune_first", [True, False])
    def test_a_write_taken_with_a_prune_job_commits_before_its_batch_runs(
        self, sqlite_store: Any, prune_first: bool
    ) -> None:
        # The prune job as ``Store.prune`` queues it (durable=False) in one group with an
        # ingest, either side of it: the ingest is committed and answered before the batch's
        # first statement, so it waits for none of its steps (ahead of the batch it would
        # have waited for all of them: the batch gives way only to writes behind it).
        store = sqlite_store
        seen: list[bool] = []
        done: list[Any] = []

        def delete(conn: sqlite3.Connection) -> None:
            seen.append(ingest.future.done())
            done.append(prune_batch(conn, "acme", CUTOFF, 3 * STEP, "2026-02-01T00:00:00.000000Z",
                                    store._writes_waiting))  # fmt: skip

        ingest = _AppendJob("acme", [prepare_event(_content(1000), Limits())])
        prune = _AppendJob("acme", [], before=delete, durable=False)
        store._commit_group([prune, ingest] if prune_first else [ingest, prune])
        assert seen == [True]
        assert len(ingest.future.result()) == 1
        assert (done[0].count, done[0].more) == (3 * STEP, False)  # nothing waited behind it
        prune.future.result()
        assert len(store.scan_pruned("acme", 0, 10_000)) == 3 * STEP

    def test_rollup_rows_a_batch_empties_go_and_the_others_keep_their_counts(
        self, tmp_path: Path
    ) -> None:
        url = f"sqlite:///{tmp_path / 'rollups.db'}"
        store = open_store(url, sqlite_synchronous="NORMAL")
        try:
            events = _fill(store)
            _fill(store, "globex")
            conn = sqlite3.connect(tmp_path / "rollups.db")
            rollups = "SELECT dim, period, value, n FROM facet_counts WHERE tenant_id = ?"
            before = {r[:3]: r[3] for r in conn.execute(rollups, ("acme",))}
            others = set(conn.execute(rollups, ("globex",)))
            store.prune("acme", CUTOFF, 1000, "2026-02-01T00:00:00.000000Z")
            after = {r[:3]: r[3] for r in conn.execute(rollups, ("acme",))}
            kept = [e for e in events if e.content["timestamp"] >= CUTOFF]
            years = {e.content["timestamp"][:4] for e in kept}
            assert all(n > 0 for n in after.values())
            assert {k[1][:4] for k in after} == years  # the 2020 periods emptied and went
            assert after == {k: n for k, n in before.items() if k[1][:4] in years}
            assert set(conn.execute(rollups, ("globex",))) == others
            conn.close()
        finally:
            store.close()

    def test_a_batch_reports_how_long_it_held_the_writer(self, sqlite_store: Any) -> None:
        batch = sqlite_store.prune("acme", CUTOFF, 5, "2026-02-01T00:00:00.000000Z")
        assert batch.count == 5
        assert batch.held is not None
        assert batch.held > 0

    def test_the_wal_sync_and_checkpoint_count_as_the_batch_held_time(
        self, sqlite_store: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # An ingest that commits while the pruning thread syncs or checkpoints the WAL waits
        # for the same disk, so the run's rest (by its duty) counts that time too.
        synced: list[int] = []
        stall = threading.Event()

        def pruned(count: int) -> None:
            synced.append(count)
            stall.wait(0.05)  # a disk this slow: the held time covers it whatever the load

        monkeypatch.setattr(sqlite_store._wal_checkpoints, "pruned", pruned)
        batch = sqlite_store.prune("acme", CUTOFF, 5, "2026-02-01T00:00:00.000000Z")
        assert synced == [5]
        assert batch.held is not None
        assert batch.held >= 0.05

    def test_a_prune_commits_without_fsync_and_an_ingest_with(self, sqlite_store: Any) -> None:
        store = sqlite_store
        statements: list[str] = []
        store._writer_conn.set_trace_callback(statements.append)
        store.prune("acme", CUTOFF, 5, "2026-02-01T00:00:00.000000Z")
        pruned = list(statements)
        assert pruned[0] == "PRAGMA synchronous=NORMAL"
        assert pruned.index("COMMIT") < pruned.index("PRAGMA synchronous=FULL")
        statements.clear()
        store.append("acme", [prepare_event(_content(1001), Limits())]).result()
        assert not [s for s in statements if s.startswith("PRAGMA synchronous")]
        assert "COMMIT" in statements
        mode = store._writer_conn.execute("PRAGMA synchronous").fetchone()[0]
        assert mode == 2  # FULL, as configured

    def test_the_pruning_thread_syncs_the_wal_after_a_batch(
        self, sqlite_store: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The batch committed without an fsync; its WAL frames are synced by the thread that
        # asked for the batch, once the writer has answered it, not by the next ingest's fsync
        # — with fdatasync, as SQLite syncs its WAL (no journal commit for the inode's mtime).
        synced: list[tuple[str, str]] = []
        fdatasync = os.fdatasync

        def spy(fd: int) -> None:
            synced.append((threading.current_thread().name, os.readlink(f"/proc/self/fd/{fd}")))
            fdatasync(fd)

        def forbidden(fd: int) -> None:
            raise AssertionError(f"fsync of {os.readlink(f'/proc/self/fd/{fd}')}")

        monkeypatch.setattr(os, "fdatasync", spy)
        monkeypatch.setattr(os, "fsync", forbidden)
        sqlite_store.prune("acme", CUTOFF, 5, "2026-02-01T00:00:00.000000Z")
        assert synced == [(threading.current_thread().name, f"{sqlite_store._path}-wal")]
        synced.clear()
        sqlite_store.prune("acme", "2000-01-01T00:00:00.000000Z", 5, "2026-02-01T00:00:00Z")
        assert synced == []  # nothing pruned, nothing to sync

    def test_the_wal_is_checkpointed_every_so_many_pruned_events(self, tmp_path: Path) -> None:
        path = tmp_path / "wal.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        opened: list[sqlite3.Connection] = []

        def connect() -> sqlite3.Connection:
            opened.append(sqlite3.connect(path, isolation_level=None))
            return opened[-1]

        def rows_in_the_database_file() -> int:
            """What the main file holds without its WAL (a copy of it alone)."""
            alone = tmp_path / f"alone-{len(opened)}.db"
            shutil.copyfile(path, alone)
            try:
                return int(sqlite3.connect(alone).execute("SELECT count(*) FROM t").fetchone()[0])
            except sqlite3.OperationalError:  # no table t: nothing was checkpointed
                return -1

        checkpoints = WalCheckpoints(connect)
        checkpoints.pruned(CHECKPOINT_EVENTS - 1)
        assert (len(opened), rows_in_the_database_file()) == (0, -1)
        checkpoints.pruned(1)
        assert (len(opened), rows_in_the_database_file()) == (1, 1)
        conn.execute("INSERT INTO t VALUES (2)")
        checkpoints.pruned(CHECKPOINT_EVENTS // 2)
        assert (len(opened), rows_in_the_database_file()) == (1, 1)
        checkpoints.pruned(CHECKPOINT_EVENTS // 2)
        assert (len(opened), rows_in_the_database_file()) == (2, 2)
        conn.close()

    def test_a_checkpoint_that_cannot_connect_is_only_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        def connect() -> sqlite3.Connection:
            raise UnavailableError("no file")

        WalCheckpoints(connect).pruned(CHECKPOINT_EVENTS)
        assert "no connection for a WAL checkpoint" in caplog.text


# -- the migration ------------------------------------------------------------------------

#: Undoes the tree migration in place, leaving exactly the previous schema: the leaf hash back
#: in ``events.leaf_hash`` (where that schema's writer put it), no level-0 nodes, no tombstones.
_TO_PREVIOUS = {
    "sqlite": (
        9,
        [
            "ALTER TABLE events ADD COLUMN leaf_hash BLOB",
            "UPDATE events SET leaf_hash = (SELECT hash FROM tree_nodes t WHERE"
            " t.tenant_id = events.tenant_id AND t.level = 0 AND t.idx = events.seq)",
            "DELETE FROM tree_nodes WHERE level = 0",
            "DROP TABLE pruned_events",
            "ALTER TABLE tree_heads DROP COLUMN pruned",
            "DELETE FROM schema_migrations WHERE version = 9",
        ],
    ),
    "postgres": (
        4,
        [
            "ALTER TABLE events ADD COLUMN leaf_hash BYTEA",
            "UPDATE events SET leaf_hash = (SELECT hash FROM tree_nodes t WHERE"
            " t.tenant_id = events.tenant_id AND t.level = 0 AND t.idx = events.seq)",
            "DELETE FROM tree_nodes WHERE level = 0",
            "DROP TABLE pruned_events",
            "ALTER TABLE tree_heads DROP COLUMN pruned",
            "DELETE FROM schema_migrations WHERE version = 4",
        ],
    ),
}


def _run(url: str, statements: list[str]) -> None:
    if url.startswith("sqlite:"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg:
        for statement in statements:
            pg.execute(statement.encode())


def _columns(url: str, table: str) -> set[str]:
    if url.startswith("sqlite:"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        names = {r[1] for r in conn.execute(f"PRAGMA table_xinfo({table})")}
        conn.close()
        return names
    import psycopg

    with psycopg.connect(url) as pg:
        rows = pg.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = %s AND table_schema = current_schema()",
            (table,),
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def previous(store_url: str) -> tuple[str, list[Any]]:
    """A database at the previous schema holding two tenants' events, and those events."""
    store = open_store(store_url, sqlite_synchronous="NORMAL")
    try:
        events = _fill(store) + _fill(store, "globex", 21)
    finally:
        store.close()
    backend = "sqlite" if store_url.startswith("sqlite:") else "postgres"
    _run(store_url, _TO_PREVIOUS[backend][1])
    return store_url, events


class TestTreeMigration:
    """Migrating a database of the previous schema moves every leaf into the tree and drops
    the column; every proof and read answers as before."""

    def test_previous_schema_has_leaves_in_events(self, previous: tuple[str, list[Any]]) -> None:
        url, _ = previous
        assert "leaf_hash" in _columns(url, "events")
        assert "pruned" not in _columns(url, "tree_heads")

    def test_migration_keeps_every_leaf_and_root(self, previous: tuple[str, list[Any]]) -> None:
        url, events = previous
        store = open_store(url, sqlite_synchronous="NORMAL")
        try:
            assert "leaf_hash" not in _columns(url, "events")
            for tenant in ("acme", "globex"):
                mine = [e for e in events if e.tenant_id == tenant]
                leaves = store.leaf_hashes(tenant, 0, len(mine))
                assert leaves == [e.leaf_hash for e in mine]
                compact = CompactRange(RFC9162)
                compact.extend(leaves)
                assert store.tree_head(tenant).root() == compact.root()
                assert all(store.get_event(tenant, e.id) == e for e in mine)
            # and the migrated store keeps writing and pruning
            store.prune("acme", CUTOFF, 1000, "2026-02-01T00:00:00.000000Z")
            more = store.append("acme", [prepare_event(_content(99), Limits())]).result()
            assert more[0].event.seq == EVENTS
            assert store.leaf_hashes("acme", EVENTS, EVENTS + 1) == [more[0].event.leaf_hash]
        finally:
            store.close()

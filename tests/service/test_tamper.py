"""``verify database`` finds every tampering of what answers a query, once, with real SQL on a
real database of each backend (a case runs on every backend that has the table it edits).

Each case edits a seeded log behind the service's back and states the one finding it must
produce: its kind, the position and event it names, and that nothing else is reported.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from trailkeep.api.services import Services
from trailkeep.merkle import PANGEA_LEGACY, RFC9162, CompactRange
from trailkeep.model.commitments import REDACTED, SALT_SIZE, commitment, field_paths, unflatten
from trailkeep.query.fulltext import search_document
from trailkeep.service import events as events_module
from trailkeep.service.audit import AuditReport, Problem, audit_tenant
from trailkeep.settings import Settings
from trailkeep.storage.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS

CHUNK = 10
CHUNKS = 4
#: Events the service wrote: 40, then the ``event.redact`` record of seq 5's erasure.
EVENTS = CHUNK * CHUNKS + 1
ORIGIN = "test.trailkeep/acme"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every case runs on both backends (``settings`` reads this)."""
    value: str = request.param
    return value


def event_content(i: int) -> dict[str, Any]:
    return {
        "action": f"document.{('read', 'update', 'share')[i % 3]}",
        "category": ("users", "tools")[i % 2],
        "outcome": ("success", "failure")[i % 2],
        "actor": {"id": f"u{i}", "email": f"u{i}@example.com", "type": "user"},
        "target": {"id": f"doc-{i}", "type": "document"},
        "source": {"ip": f"10.0.0.{i}"},
        "message": f"user u{i} touched quarterly report {i}",
        "session_id": f"s{i % 5}",
        "metadata": {"n": i, "region": "eu"},
    }


def seed(services: Services) -> None:
    """40 events in four signed chunks, then a real erasure of seq 5's email, signed."""
    services.tenants.create_tenant("acme")
    for chunk in range(CHUNKS):
        events = [services.events.prepare(event_content(chunk * CHUNK + i)) for i in range(CHUNK)]
        services.store.append("acme", events).result()
        services.log.sign_pending()
    victim = services.store.audit_rows("acme", 5, 6)[0][1]
    asyncio.run(services.redaction.redact("acme", victim, ["actor.email"], "admin-1", "gdpr"))
    services.log.sign_pending()


@pytest.fixture
def seeded(services: Services) -> Services:
    seed(services)
    return services


@dataclass
class Db:
    """Real SQL on the test's database, whichever backend it is (``?`` placeholders)."""

    settings: Settings
    backend: str

    def __post_init__(self) -> None:
        if self.backend == "sqlite":
            import sqlite3

            path = self.settings.database.removeprefix("sqlite:///")
            self._conn: Any = sqlite3.connect(path, isolation_level=None)
        else:
            self._conn = psycopg.connect(self.settings.database, autocommit=True)

    def run(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.backend == "postgres":
            sql = sql.replace("?", "%s")
        cursor = self._conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []

    def one(self, sql: str, *params: Any) -> Any:
        return self.run(sql, *params)[0][0]

    def event_id(self, seq: int) -> str:
        return str(self.one("SELECT id FROM events WHERE seq = ?", seq))

    def set_fulltext(self, seq: int, message: str | None, fields: str | None) -> None:
        if self.backend == "sqlite":
            row_id = self.one("SELECT row_id FROM events WHERE seq = ?", seq)
            if message is None:
                self.run("DELETE FROM events_fts WHERE rowid = ?", row_id)
            else:
                self.run(
                    "UPDATE events_fts SET message = ?, fields = ? WHERE rowid = ?",
                    message,
                    fields,
                    row_id,
                )
        else:
            self.run(
                "UPDATE events SET search_message = ?, search_fields = ? WHERE seq = ?",
                message,
                fields,
                seq,
            )

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def db(seeded: Services, settings: Settings, backend: str) -> Iterator[Db]:
    opened = Db(settings, backend)
    yield opened
    opened.close()


def audit(services: Services, **options: Any) -> AuditReport:
    verifier = services.log.signer.verifier()
    return audit_tenant(services.store, "acme", verifier, ORIGIN, **options)


# -- the tamperings --------------------------------------------------------------------------


def erase_in_database(db: Db, seq: int, path: str, column: str) -> None:
    """A perfect fake erasure, as the service would write it, but with no ``event.redact``
    record: marker in the body, salt zeroed, commitment kept, column and full text updated."""
    body, salts, redactions = db.run(
        "SELECT body, salts, redactions FROM events WHERE seq = ?", seq
    )[0]
    content = orjson.loads(bytes(body))
    values = field_paths(content)
    order = sorted(values)
    at = order.index(path) * SALT_SIZE
    salts = bytes(salts)
    kept = orjson.loads(bytes(redactions)) if redactions else {}
    kept[path] = commitment(salts[at : at + SALT_SIZE], values[path]).hex()
    values[path] = dict(REDACTED)
    content = unflatten(values)
    salts = salts[:at] + bytes(SALT_SIZE) + salts[at + SALT_SIZE :]
    db.run(
        f"UPDATE events SET body = ?, salts = ?, redactions = ?, {column} = NULL WHERE seq = ?",
        orjson.dumps(content),
        salts,
        orjson.dumps(dict(sorted(kept.items()))),
        seq,
    )
    text = search_document(content)
    db.set_fulltext(seq, text.message, text.fields)


def change_body(db: Db) -> None:
    body = orjson.loads(bytes(db.one("SELECT body FROM events WHERE seq = 7")))
    body["actor"]["id"] = "mallory"
    db.run("UPDATE events SET body = ? WHERE seq = 7", orjson.dumps(body))


def swap_rows(db: Db) -> None:
    db.run("UPDATE events SET seq = -1 WHERE seq = 7")
    db.run("UPDATE events SET seq = 7 WHERE seq = 8")
    db.run("UPDATE events SET seq = 8 WHERE seq = -1")


def row_past_head(db: Db) -> None:
    """A copy of the last row, one position past the tree head, with an id of its own."""
    columns = "tenant_id, received_at, ts, action, category, outcome, actor_id, body, salts"
    db.run(
        f"INSERT INTO events (seq, id, {columns}) SELECT seq + 1, 'evt_forged', {columns}"
        f" FROM events WHERE seq = {EVENTS - 1}"
    )


def perfect_truncation(db: Db, size: int) -> None:
    """Cut the log to ``size`` events and leave a database consistent with itself: rows,
    checkpoints, tree nodes, tree head and (SQLite) the facet rollups recounted."""
    leaves = [
        bytes(r[0]) for r in db.run("SELECT hash FROM tree_nodes WHERE level = 0 ORDER BY idx")
    ][:size]
    compact = CompactRange(RFC9162)
    compact.extend(leaves)
    db.run("DELETE FROM events WHERE seq >= ?", size)
    db.run("DELETE FROM checkpoints WHERE size > ?", size)
    db.run("DELETE FROM tree_nodes WHERE ((idx + 1) << level) > ?", size)
    db.run("UPDATE tree_heads SET size = ?, frontier = ?", size, b"".join(compact.hashes))
    # Pangea's tree, kept beside it over the same positions, is cut the same way.
    pangea_leaves = [
        bytes(r[0])
        for r in db.run("SELECT hash FROM pangea_tree_nodes WHERE level = 0 ORDER BY idx")
    ][:size]
    pangea = CompactRange(PANGEA_LEGACY)
    pangea.extend(pangea_leaves)
    db.run("DELETE FROM pangea_tree_nodes WHERE ((idx + 1) << level) > ?", size)
    db.run("UPDATE tree_heads SET pangea_frontier = ?", b"".join(pangea.hashes))
    if db.backend == "sqlite":
        db.run("DELETE FROM facet_counts")
        for version, _, statements in SQLITE_MIGRATIONS:
            if version == 3:  # the migration that first counted the rollups from the events
                for statement in statements[1:]:
                    db.run(statement)


def sqlite_only(sql: str) -> Callable[[Db], None]:
    def tamper(db: Db) -> None:
        if db.backend != "sqlite":
            pytest.skip("PostgreSQL keeps no such table")
        db.run(sql)

    return tamper


def postgres_only(sql: str) -> Callable[[Db], None]:
    def tamper(db: Db) -> None:
        if db.backend == "sqlite":
            pytest.skip("SQLite keeps no such table")
        db.run(sql)

    return tamper


@dataclass(frozen=True)
class Case:
    tamper: Callable[[Db], None]
    kind: str
    seq: int | None
    #: the event named is the one at ``seq`` after the tampering (None: no event is named)
    names_event: bool = True
    #: findings in all: one per real problem
    count: int = 1


CASES = [
    # the committed content and the tree
    pytest.param(Case(change_body, "altered", 7), id="change-field"),
    pytest.param(
        Case(lambda db: db.run("DELETE FROM events WHERE seq = 7"), "missing", 7, False),
        id="delete-row",
    ),
    pytest.param(Case(swap_rows, "altered", 7, count=2), id="swap-rows"),
    pytest.param(
        Case(lambda db: db.run("DELETE FROM events WHERE seq >= 35"), "missing", 35, False),
        id="truncate-tail",
    ),
    pytest.param(
        Case(
            lambda db: db.run(
                "UPDATE tree_nodes SET hash = ? WHERE level = 0 AND idx = 7", bytes(32)
            ),
            "altered",
            7,
        ),
        id="change-stored-hash",
    ),
    pytest.param(
        Case(
            lambda db: db.run("UPDATE events SET salts = substr(salts, 17) WHERE seq = 7"),
            "field",
            7,
        ),
        id="remove-salt",
    ),
    pytest.param(
        Case(
            lambda db: db.run(
                "UPDATE tree_nodes SET hash = ? WHERE level = 2 AND idx = 1", bytes(32)
            ),
            "tree-node",
            4,
            False,
        ),
        id="change-tree-node",
    ),
    pytest.param(
        Case(
            lambda db: db.run("DELETE FROM tree_nodes WHERE level = 3 AND idx = 0"),
            "tree-node",
            0,
            False,
        ),
        id="delete-tree-node",
    ),
    pytest.param(
        Case(lambda db: db.run("UPDATE tree_heads SET size = size - 1"), "tree-head", None),
        id="shrink-tree-head",
    ),
    pytest.param(
        Case(
            lambda db: db.run(
                "UPDATE checkpoints SET note = replace(note, 'test', 'evil') WHERE size = 20"
            ),
            "checkpoint",
            None,
        ),
        id="replace-checkpoint",
    ),
    pytest.param(
        Case(
            lambda db: db.run("UPDATE checkpoints SET root_hash = ? WHERE size = 20", bytes(32)),
            "checkpoint",
            None,
        ),
        id="change-checkpoint-root",
    ),
    pytest.param(Case(row_past_head, "past-head", EVENTS), id="row-past-head"),
    pytest.param(
        Case(
            lambda db: db.run(
                "INSERT INTO tree_nodes (tenant_id, level, idx, hash) VALUES"
                " ('acme', 1, 20, ?), ('acme', 3, -1, ?), ('acme', 63, 0, ?), ('acme', 0, 500, ?)",
                *[bytes(32)] * 4,
            ),
            "tree-node",
            None,
        ),
        id="nodes-past-the-tree",
    ),
    # the query columns derived from the content
    pytest.param(
        Case(lambda db: db.run("UPDATE events SET action = 'login' WHERE seq = 7"), "derived", 7),
        id="derived-action",
    ),
    pytest.param(
        Case(
            lambda db: db.run("UPDATE events SET ts = '2001-01-01T00:00:00.000000Z' WHERE seq = 7"),
            "derived",
            7,
        ),
        id="derived-ts",
    ),
    pytest.param(
        Case(lambda db: db.run("UPDATE events SET actor_id = 'u1' WHERE seq = 7"), "derived", 7),
        id="derived-actor-id",
    ),
    pytest.param(
        Case(
            lambda db: db.run("UPDATE events SET outcome = 'success' WHERE seq = 7"), "derived", 7
        ),
        id="derived-outcome",
    ),
    pytest.param(
        Case(lambda db: db.run("UPDATE events SET category = NULL WHERE seq = 7"), "derived", 7),
        id="derived-category",
    ),
    pytest.param(
        Case(
            lambda db: db.run(
                "UPDATE events SET target_id = 'doc-1', session_id = 's9', source_ip = NULL"
                " WHERE seq = 7"
            ),
            "derived",
            7,
        ),
        id="derived-three-columns-one-finding",
    ),
    # full text
    pytest.param(
        Case(lambda db: db.set_fulltext(7, None, None), "fulltext", 7), id="fulltext-row-deleted"
    ),
    pytest.param(
        Case(lambda db: db.set_fulltext(7, "nothing here", "u7"), "fulltext", 7),
        id="fulltext-row-altered",
    ),
    # facet rollups (SQLite keeps them; PostgreSQL counts the events for facets)
    pytest.param(
        Case(
            sqlite_only(
                "UPDATE facet_counts SET n = n + 5 WHERE dim = 'action'"
                " AND value = 'document.read' AND length(period) = 10"
            ),
            "rollup",
            None,
        ),
        id="rollup-altered",
    ),
    pytest.param(
        Case(
            sqlite_only("DELETE FROM facet_counts WHERE dim = 'outcome' AND value = 'failure'"),
            "rollup",
            None,
            count=2,  # its day row and its hour row: each answers facet queries
        ),
        id="rollup-deleted",
    ),
    # PostgreSQL's hour totals (migration 9), which answer deep pages and totals
    pytest.param(
        Case(
            postgres_only(
                "UPDATE hour_totals SET n = n + 5 WHERE ctid = (SELECT ctid FROM hour_totals"
                " WHERE dim = 'action' AND value = 'document.read' LIMIT 1)"
            ),
            "rollup",
            None,
        ),
        id="hour-total-altered",
    ),
    pytest.param(
        Case(
            postgres_only(
                "DELETE FROM hour_totals WHERE ctid = (SELECT ctid FROM hour_totals"
                " WHERE dim = '_hour' AND n > 0 LIMIT 1)"
            ),
            "rollup",
            None,
        ),
        id="hour-total-deleted",
    ),
    # erasures
    pytest.param(
        Case(lambda db: erase_in_database(db, 9, "actor.email", "actor_email"), "redaction", 9),
        id="fake-redaction",
    ),
    pytest.param(
        Case(lambda db: erase_in_database(db, 5, "actor.type", "actor_type"), "redaction", 5),
        id="redaction-not-named-by-its-record",
    ),
]


class TestTampering:
    """Each tampering is found once, with its kind, position and event."""

    def test_clean_log_passes(self, seeded: Services) -> None:
        report = audit(seeded)
        assert report.problems == []
        assert (report.events, report.checkpoints) == (EVENTS, CHUNKS + 1)

    @pytest.mark.parametrize("case", CASES)
    def test_tampering_is_found_once(self, seeded: Services, db: Db, case: Case) -> None:
        case.tamper(db)
        expected_id = db.event_id(case.seq) if case.seq is not None and case.names_event else None
        problems = audit(seeded).problems
        assert len(problems) == case.count, "\n".join(map(str, problems))
        first: Problem = problems[0]
        assert first.kind == case.kind, str(first)
        assert first.seq == case.seq, str(first)
        if expected_id is not None:
            assert first.event_id == expected_id, str(first)

    @pytest.mark.parametrize("case", CASES)
    def test_c_part_finds_the_same(self, seeded: Services, db: Db, case: Case) -> None:
        """Rows the C part vouches for skip the exact path: the findings do not change."""
        case.tamper(db)
        exact = audit(seeded, native=False)
        assert exact.problems  # the tampering is found at all
        assert audit(seeded).problems == exact.problems

    def test_matching_rollups_are_compared_in_c(
        self, seeded: Services, backend: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SQLite's stored rollups equal to the recount are judged by the scan's reader in C
        (``audit_rollups_match``), never read into a dict; a difference is then read and
        compared row by row (the rollup cases above)."""
        if backend != "sqlite":
            pytest.skip("PostgreSQL keeps no rollups")

        def no_dict(tenant_id: str) -> None:
            raise AssertionError("the stored rollups were read into Python")

        monkeypatch.setattr(seeded.store, "audit_rollups", no_dict)
        assert audit(seeded).problems == []

    def test_derived_finding_names_every_column(self, seeded: Services, db: Db) -> None:
        db.run("UPDATE events SET action = 'login', actor_id = 'u1' WHERE seq = 7")
        (problem,) = audit(seeded).problems
        assert "column action is 'login'" in problem.message
        assert "'document.update'" in problem.message
        assert "column actor_id is 'u1'" in problem.message


class TestCheckpointsHeldOutside:
    """A checkpoint kept outside the database proves deletions and truncations."""

    def _latest(self, services: Services) -> str:
        latest = services.store.latest_checkpoint("acme")
        assert latest is not None
        assert latest.size == EVENTS
        return latest.note

    def test_clean_log_extends_it(self, seeded: Services) -> None:
        assert audit(seeded, held=[self._latest(seeded)]).problems == []

    def test_deleted_checkpoint_rows(self, seeded: Services, db: Db) -> None:
        note = self._latest(seeded)
        db.run("DELETE FROM checkpoints WHERE size >= 30")
        (problem,) = audit(seeded, held=[note]).problems
        assert problem.kind == "checkpoint"
        assert f"size {EVENTS} held outside the database is not stored" in problem.message

    def test_perfect_truncation(self, seeded: Services, db: Db) -> None:
        """Five more events are signed and the note kept; then they are cut off."""
        more = [seeded.events.prepare(event_content(100 + i)) for i in range(5)]
        seeded.store.append("acme", more).result()
        seeded.log.sign_pending()
        latest = seeded.store.latest_checkpoint("acme")
        assert latest is not None
        assert latest.size == EVENTS + 5
        perfect_truncation(db, EVENTS)
        assert audit(seeded).problems == []  # consistent with itself: only the held one can tell
        (problem,) = audit(seeded, held=[latest.note]).problems
        assert problem.kind == "truncated"
        assert f"size {EVENTS + 5}" in problem.message
        assert f"only {EVENTS} events" in problem.message

    def test_forged_held_checkpoint(self, seeded: Services) -> None:
        note = self._latest(seeded).replace("test.trailkeep/acme", "test.trailkeep/evil")
        (problem,) = audit(seeded, held=[note]).problems
        assert problem.kind == "checkpoint"


class TestCheckpointGaps:
    """Events that arrived over a long span with no stored checkpoint between them mean a
    deleted checkpoint row, since the server signs within its interval."""

    @pytest.fixture
    def spaced(self, services: Services, monkeypatch: pytest.MonkeyPatch) -> Services:
        """Four chunks ten minutes apart, each signed as it arrived."""
        start = datetime(2026, 11, 1, tzinfo=UTC)
        clock = itertools.count()

        def now_ns() -> int:
            n = next(clock)
            moment = start + timedelta(minutes=10 * (n // CHUNK), milliseconds=n % CHUNK)
            return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000

        monkeypatch.setattr(events_module, "_now_ns", now_ns)
        services.tenants.create_tenant("acme")
        for chunk in range(CHUNKS):
            batch = [
                replace(services.events.prepare(event_content(chunk * CHUNK + i)))
                for i in range(CHUNK)
            ]
            services.store.append("acme", batch).result()
            services.log.sign_pending()
        return services

    def test_signed_as_they_arrived_passes(self, spaced: Services) -> None:
        assert audit(spaced).problems == []

    @pytest.mark.parametrize(
        ("deleted", "seq"),
        [
            pytest.param("size = 20", 10, id="middle"),
            pytest.param("size >= 30", 20, id="latest-two"),
            pytest.param("size IN (10, 20)", 0, id="first-two"),
        ],
    )
    def test_deleted_checkpoint_leaves_a_gap(
        self, spaced: Services, settings: Settings, backend: str, deleted: str, seq: int
    ) -> None:
        db = Db(settings, backend)
        db.run(f"DELETE FROM checkpoints WHERE {deleted}")
        db.close()
        (problem,) = audit(spaced).problems
        assert (problem.kind, problem.seq) == ("checkpoint-gap", seq), str(problem)
        assert audit(spaced, max_gap=0).problems == []  # the check can be turned off

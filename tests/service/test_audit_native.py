"""The C part's row check (``_fastleaf.check_rows``, ``SQLiteRows``) answers exactly as the exact
path does: on any row, intact or tampered, the audit's findings, leaves, rollup recount and
watched times are the same with it as without it; and it does vouch for the common case (else
the audit would be slow, not wrong).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.model.strategies import event_contents
from trailkeep.api.services import Services
from trailkeep.errors import TrailkeepError
from trailkeep.model import _native
from trailkeep.model.commitments import field_paths
from trailkeep.model.evidence import event_leaf_hash
from trailkeep.query.fulltext import search_document
from trailkeep.service.audit._events import ChunkResult, EventChecker
from trailkeep.service.audit._report import Problem
from trailkeep.storage._audit_chunk import AuditChunk, TallySpec, vouch_rows
from trailkeep.storage.base import AUDIT_FIELDS
from trailkeep.storage.rows import QUERY_COLUMNS, filter_values, pack_salts, unpack_salts

pytestmark = pytest.mark.skipif(_native.check_rows is None, reason="the C part was not built")

TENANT = "acme"
SEQ = 3
EVENT = "evt_01JDAB3K9Q7M2X5V8N4R6T0WYZ"
WHEN = "2026-11-23T10:00:05.123456Z"

_names = st.sampled_from(["id", "email", "type", "ip", "client_id", "model", "n", "ok", "a.b"])
_plain = st.one_of(
    st.text(st.sampled_from('abc xyz-.@\u00e9\u20ac\U0001f600"\\\n'), max_size=8),
    st.integers(-(2**53) - 2, 2**53 + 2),
    st.booleans(),
    st.none(),
)
_members = st.dictionaries(
    _names, _plain | st.floats(allow_nan=False) | st.lists(_plain), max_size=4
)
#: Content the C part can vouch for, mostly, with the odd value it must decline.
common_contents = st.fixed_dictionaries(
    {"action": st.sampled_from(["login", "document.read", "event.redact"]) | st.text(max_size=5)},
    optional={
        "timestamp": st.just(WHEN) | st.integers(0, 3),
        "category": st.none() | st.sampled_from(["users", "tools"]) | st.integers(0, 2),
        "outcome": st.none() | st.sampled_from(["success", "failure"]),
        "actor": st.none() | _members | st.text(max_size=4),
        "target": st.none() | _members,
        "source": st.none() | _members,
        "metadata": st.none() | _members,
        "message": st.none() | _plain,
        "session_id": _plain,
        "request_id": _plain,
        "signature": st.just({"alg": "Ed25519"}),
        "old": _plain | st.lists(_plain, max_size=2),
        "id": st.just("x"),
    },
)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """``services`` on each backend: SQLite's rows are stepped in C, PostgreSQL's checked."""
    value: str = request.param
    return value


def stored_row(content: dict[str, Any], seed: int) -> tuple[Any, ...]:
    """The row the writer stores for ``content`` (``AUDIT_FIELDS``): the exact leaf (zeros if
    the content has none), packed salts, the query columns and the full-text row."""
    try:
        paths = sorted(field_paths(content))
    except TrailkeepError:
        paths = []
    salts = {p: hashlib.sha256(f"{seed}:{p}".encode()).digest()[:16] for p in paths}
    wire = {"id": EVENT, "tenant_id": TENANT, "seq": SEQ, "received_at": WHEN, **content}
    try:
        leaf = event_leaf_hash(wire, salts, {})
    except TrailkeepError:
        leaf = bytes(32)
    text = search_document(content)
    body = orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
    return (SEQ, EVENT, WHEN, body, pack_salts(salts), leaf, None, text.message, text.fields,
            *filter_values(content))  # fmt: skip


_texts = st.none() | st.text(max_size=6) | st.sampled_from(["login", "users", WHEN, ""])


#: Edits of the stored body: a spelling orjson reads to the same content, or to other content,
#: or refuses (whitespace, a repeated key, "-0", a fraction, a leading zero, invalid UTF-8, a
#: lone surrogate, trailing bytes).
_body_edits = st.sampled_from(
    [
        lambda b: b.replace(b"a", b"\\u0061"),
        lambda b: re.sub(rb':"([ -~])', lambda m: b':"\\u%04x' % m[1][0], b),  # values only
        lambda b: b.replace(b":", b": ", 1),
        lambda b: b[:-1] + b',"action":"login"}',
        lambda b: b[:-1] + b',"n":-0}',
        lambda b: b[:-1] + b',"n":1.0}',
        lambda b: b[:-1] + b',"n":01}',
        lambda b: b[:-1] + b',"n":"\xff"}',
        lambda b: b[:-1] + b',"n":"\\ud800"}',
        lambda b: b[:-1] + b',"n":"\\ud83d\\ude00"}',
        lambda b: b + b" ",
        lambda b: b.replace(b'"', b"'", 1),
    ]
)
#: One stored column changed behind the service's back (or none).
tamperings = st.one_of(
    st.just(None),
    st.tuples(st.integers(9, len(AUDIT_FIELDS) - 1), _texts),
    st.tuples(st.sampled_from([7, 8]), _texts),
    st.tuples(st.just(3), st.sampled_from([b"{", b"[]", b'{"action":"login"}']) | _body_edits),
    st.tuples(st.just(4), st.sampled_from([b"", bytes(16), None])),
    st.tuples(st.just(5), st.sampled_from([bytes(32), None, b"short"])),
    st.tuples(st.just(6), st.sampled_from([b"{}", b'{"actor.email":"00"}'])),
    st.tuples(st.just(1), st.sampled_from(["evt_other", 'evt_"quoted"'])),
    st.tuples(st.just(2), st.sampled_from(["2026-11-23T10:00:05Z", "2026-11-23T10:00:05.000000Z"])),
)


def tamper(row: tuple[Any, ...], change: tuple[int, Any] | None) -> tuple[Any, ...]:
    if change is None:
        return row
    at, value = change
    if callable(value):
        value = value(row[at])
    return (*row[:at], value, *row[at + 1 :])


def outcome(read: Callable[[TallySpec | None], AuditChunk] | None, row: Any) -> tuple[Any, ...]:
    """Everything the audit takes from a chunk: findings, leaves, taint, recount, times.

    ``read`` is the C part (given the rollups' tally to count into); None reads ``row`` (a list
    of rows) the exact way.
    """
    problems: list[Problem] = []
    checker = EventChecker(TENANT, str, problems, frozenset({SEQ}))
    if read is None:
        chunk = AuditChunk.unchecked(row, SEQ, SEQ + 1)
    else:
        chunk = read(checker.rollups.spec())
    result: ChunkResult = checker.check(chunk, SEQ, SEQ + 1)
    return (
        [repr(p) for p in problems],
        result.leaves,
        result.tainted,
        checker.rollups.expected(),
        checker.received_at,
        sorted(checker.redactions.problems()),
    )


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sqlite3.Connection, Any]]:
    """A real SQLite table of audit rows, and a ``SQLiteRows`` reading it."""
    path = Path(tmp_path_factory.mktemp("rows")) / "rows.db"
    conn = sqlite3.connect(path, isolation_level=None)
    columns = ", ".join(AUDIT_FIELDS)
    conn.execute(f"CREATE TABLE r (tenant_id TEXT, {columns})")
    reader = _native.SQLiteRows(
        str(path), f"SELECT {columns} FROM r WHERE tenant_id = ? AND seq >= ? AND seq < ?"
    )
    yield conn, reader
    reader.close()
    conn.close()


class TestSameAnswers:
    """With or without the C part, a row gets the same findings and feeds the same counts."""

    @given(
        content=common_contents | event_contents,
        seed=st.integers(0, 9),
        change=tamperings,
    )
    def test_tuple_rows(
        self, content: dict[str, Any], seed: int, change: tuple[int, Any] | None
    ) -> None:
        row = tamper(stored_row(content, seed), change)
        for tally in (True, False):  # counted by the C part, or listed for the tally

            def read(spec: TallySpec | None, tally: bool = tally) -> AuditChunk:
                watch = frozenset({SEQ})
                return vouch_rows([row], SEQ, SEQ + 1, TENANT, watch, spec if tally else None)

            assert outcome(read, [row]) == outcome(None, [row])

    @given(content=common_contents, seed=st.integers(0, 9), change=tamperings)
    def test_sqlite_rows(
        self,
        table: tuple[sqlite3.Connection, Any],
        content: dict[str, Any],
        seed: int,
        change: tuple[int, Any] | None,
    ) -> None:
        """The same rows stored in SQLite and stepped in C: what it hands back for the exact
        path is what the sqlite3 module reads."""
        conn, reader = table
        row = tamper(stored_row(content, seed), change)
        conn.execute("DELETE FROM r")
        conn.execute(f"INSERT INTO r VALUES ({', '.join('?' * (1 + len(row)))})", (TENANT, *row))
        columns = ", ".join(AUDIT_FIELDS)
        stored = conn.execute(f"SELECT {columns} FROM r").fetchall()

        def read(spec: TallySpec | None) -> AuditChunk:
            found = reader.check(TENANT, SEQ, SEQ + 1, '"acme"', orjson.loads, {SEQ}, spec)
            chunk = AuditChunk(*found)
            assert chunk.rest in ([], stored)  # as the sqlite3 module reads them
            return chunk

        assert outcome(read, None) == outcome(None, stored)


class TestVouches:
    """The common case never reaches the exact path."""

    CONTENT: ClassVar[dict[str, Any]] = {
        "action": "document.update",
        "timestamp": WHEN,
        "outcome": "success",
        "actor": {"id": "u1", "email": "u1@example.com", "type": "user"},
        "target": {"id": "doc-1", "type": "document"},
        "metadata": {"n": 3, "ok": True, "region": "eu"},
        "message": "User u1 updated the quarterly report",
        "session_id": "s1",
    }

    def test_intact_row(self) -> None:
        row = stored_row(self.CONTENT, 1)
        chunk = vouch_rows([row], SEQ, SEQ + 1, TENANT, frozenset({SEQ}))
        assert (chunk.vouched, chunk.rest, chunk.leaves) == (1, [], [row[5]])
        assert chunk.counted == [row[9:]]
        assert chunk.watched == [(SEQ, WHEN)]

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param((9 + QUERY_COLUMNS.index("action"), "login"), id="column"),
            pytest.param((8, "other words"), id="fulltext"),
            pytest.param((5, bytes(32)), id="leaf"),
            pytest.param((6, b"{}"), id="erasures"),
        ],
    )
    def test_any_difference_is_declined(self, change: tuple[int, Any]) -> None:
        row = tamper(stored_row(self.CONTENT, 1), change)
        chunk = vouch_rows([row], SEQ, SEQ + 1, TENANT, frozenset())
        assert (chunk.vouched, chunk.rest) == (0, [row])

    def test_a_clean_log_is_vouched_for_on_each_backend(self, services: Services) -> None:
        """Every row of a log written by the service, but the erased one and its record."""
        services.tenants.create_tenant(TENANT)
        events = [services.events.prepare({**self.CONTENT, "message": f"m{i}"}) for i in range(9)]
        services.store.append(TENANT, events).result()
        with services.store.audit_scan(TENANT) as scan:
            chunk = scan(0, 16, frozenset(), None)
        assert (chunk.vouched, chunk.rest) == (9, [])
        assert chunk.leaves[9:] == [None] * 7


def _chunks(reader: Any, tenant: str, size: int, width: int) -> list[tuple[Any, ...]]:
    """Every chunk of ``width`` positions of ``[0, size)`` as ``reader.check`` hands it back
    (its rows for the exact path as they come, its rollups listed, not counted)."""
    return [
        reader.check(tenant, s, min(size, s + width), orjson.dumps(tenant).decode(), orjson.loads,
                     frozenset(range(size)), None)
        for s in range(0, size, width)
    ]  # fmt: skip


@pytest.mark.skipif(_native.SQLiteRows is None, reason="the C part was not built")
class TestRowIdOrder:
    """``SQLiteRows`` reads a chunk in row-id order where that order gives its positions, and
    by ``seq`` from the first row that does not; either way it hands back what the ``seq``
    order gives (SQLite only: the order of a table's row ids is SQLite's)."""

    CONTENT: ClassVar[dict[str, Any]] = TestVouches.CONTENT

    @pytest.fixture
    def backend(self) -> str:
        return "sqlite"

    @staticmethod
    def readers(path: str) -> tuple[Any, Any]:
        from trailkeep.storage import _sqlite_audit as q

        by_seq = _native.SQLiteRows(path, q._SCAN, q._SCAN_LEAVES)
        by_rowid = _native.SQLiteRows(
            path, q._SCAN, q._SCAN_LEAVES, by_rowid=q._SCAN_BY_ROWID, bounds=q._SCAN_BOUND
        )
        return by_seq, by_rowid

    def write(self, services: Services, tenants: list[str], rounds: int) -> str:
        for tenant in tenants:
            services.tenants.create_tenant(tenant)
        for r in range(rounds):  # the tenants' rows interleaved, round by round
            for tenant in tenants:
                event = services.events.prepare({**self.CONTENT, "message": f"{tenant} {r}"})
                services.store.append(tenant, [event]).result()
        return str(services.settings.database.removeprefix("sqlite:///"))

    def same(self, path: str, tenant: str, size: int, width: int) -> int:
        """Both readers agree on every chunk; the rows the row-id order read."""
        by_seq, by_rowid = self.readers(path)
        try:
            assert _chunks(by_rowid, tenant, size, width) == _chunks(by_seq, tenant, size, width)
            assert by_seq.rowid_rows == 0
            return int(by_rowid.rowid_rows)
        finally:
            by_seq.close()
            by_rowid.close()

    def test_one_tenant_is_read_in_row_id_order(self, services: Services) -> None:
        path = self.write(services, [TENANT], 20)
        assert self.same(path, TENANT, 20, 8) == 20

    @pytest.mark.parametrize(
        ("tenants", "read"),
        [
            pytest.param(["acme", "globex"], 20, id="one-other-row-between"),
            pytest.param(["acme", "globex", "initech"], 0, id="two-other-rows-between"),
        ],
    )
    def test_interleaved_tenants(self, services: Services, tenants: list[str], read: int) -> None:
        """A chunk's row-id range may hold as many rows of others as its own, no more."""
        path = self.write(services, tenants, 20)
        assert self.same(path, TENANT, 20, 8) == read

    @pytest.mark.parametrize(
        ("sql", "read"),
        [
            pytest.param("UPDATE events SET seq = -1 WHERE seq = 11", 3, id="moved-away"),
            pytest.param(
                "UPDATE events SET tenant_id = 'globex' WHERE seq = 11", 3, id="other-tenant"
            ),
            pytest.param("DELETE FROM events WHERE seq = 11", 3, id="deleted"),
            pytest.param("DELETE FROM events WHERE seq = 8", 0, id="first-deleted"),
            pytest.param("DELETE FROM events WHERE seq = 15", 0, id="last-deleted"),
            pytest.param(
                "UPDATE events SET row_id = row_id + 1000 WHERE seq = 11",
                3,
                id="moved-to-the-end",
            ),
            pytest.param(
                "UPDATE events SET seq = -1 WHERE seq = 11; UPDATE events SET seq = 11 WHERE"
                " seq = 12; UPDATE events SET seq = 12 WHERE seq = -1",
                3,
                id="swapped",
            ),
        ],
    )
    def test_rows_out_of_order_are_read_by_seq(
        self, services: Services, sql: str, read: int
    ) -> None:
        """From the first row that is not the next position (in the second chunk, [8, 16)),
        the chunk is read by seq: every row is handed back as the seq order gives it."""
        path = self.write(services, [TENANT], 20)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.executescript(sql)
        conn.close()
        assert self.same(path, TENANT, 20, 8) == 8 + read + 4

    @pytest.mark.parametrize(
        "sql",
        [
            pytest.param("", id="intact"),
            pytest.param("DELETE FROM tree_nodes WHERE level = 0 AND idx = 11", id="deleted"),
            pytest.param(
                "UPDATE tree_nodes SET hash = x'00' WHERE level = 0 AND idx = 11", id="short"
            ),
            pytest.param(
                "UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 11",
                id="altered",
            ),
        ],
    )
    def test_leaves_read_at_once_or_beside_the_rows(self, services: Services, sql: str) -> None:
        """With the nodes query, a chunk's leaves are read at once where each is there with 32
        bytes, else stepped beside its rows: the chunks are the same either way."""
        from trailkeep.storage import _sqlite_audit as q

        path = self.write(services, [TENANT], 20)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.executescript(sql)
        conn.close()
        at_once = _native.SQLiteRows(
            path, q._SCAN, q._SCAN_LEAVES, q._HASHES[0], by_rowid=q._SCAN_BY_ROWID,
            bounds=q._SCAN_BOUND,
        )  # fmt: skip
        by_seq, beside = self.readers(path)
        try:
            chunks = _chunks(at_once, TENANT, 20, 8)
            assert chunks == _chunks(beside, TENANT, 20, 8) == _chunks(by_seq, TENANT, 20, 8)
            assert sum(chunk[4] for chunk in chunks) == (20 if not sql else 19)
        finally:
            for reader in (at_once, by_seq, beside):
                reader.close()

    def test_an_error_while_reading_in_row_id_order_is_raised(self, services: Services) -> None:
        """A row-id range is read by an aggregate that checks each row inside SQLite's loop:
        an exception there (here from ``loads``, which a body the C scan declines goes to)
        ends the chunk with that exception, and the reader reads the next chunk as before."""
        services.tenants.create_tenant(TENANT)
        for r in range(8):  # metadata with a float: declined by the scan, parsed by `loads`
            content = {**self.CONTENT, "message": f"m {r}", "metadata": {"x": 1.5}}
            services.store.append(TENANT, [services.events.prepare(content)]).result()
        path = str(services.settings.database.removeprefix("sqlite:///"))
        _, by_rowid = self.readers(path)

        def loads(raw: bytes) -> Any:
            raise RuntimeError("loads failed")

        tenant_json = orjson.dumps(TENANT).decode()
        try:
            with pytest.raises(RuntimeError, match="loads failed"):
                by_rowid.check(TENANT, 0, 8, tenant_json, loads, frozenset(), None)
            assert by_rowid.rowid_rows == 0
            chunk = by_rowid.check(TENANT, 0, 8, tenant_json, orjson.loads, frozenset(), None)
            assert by_rowid.rowid_rows == 8
            assert chunk[4] == 0  # none vouched for: each row for the exact path
            assert len(chunk[2]) == 8
        finally:
            by_rowid.close()

    def test_audit_without_a_unique_seq_index(self, services: Services) -> None:
        """Two rows at one position are possible only without the unique index on (tenant,
        seq): the scan then reads by seq alone, and finds the second row as the exact path
        does (row-id order would read the first row of each position and stop)."""
        from trailkeep.service.audit import audit_tenant
        from trailkeep.storage._sqlite_audit import _seq_is_unique

        path = self.write(services, [TENANT], 12)
        services.log.sign_pending()
        conn = sqlite3.connect(path, isolation_level=None)
        assert _seq_is_unique(conn)
        conn.execute("DROP INDEX events_seq")
        assert not _seq_is_unique(conn)
        conn.execute(
            "INSERT INTO events (row_id, tenant_id, seq, id, received_at, ts, action, outcome,"
            " body, salts) SELECT row_id + 1000, tenant_id, seq, id || 'x', received_at, ts,"
            " action, outcome, body, salts FROM events WHERE seq = 5"
        )
        conn.close()
        verifier = services.log.signer.verifier()

        def findings(native: bool) -> list[tuple[str, int | None]]:
            report = audit_tenant(
                services.store, TENANT, verifier, "test.trailkeep/acme", native=native
            )
            return sorted((p.kind, p.seq) for p in report.problems)

        assert findings(True) == findings(False)
        assert (findings(True) or [("", None)])[0][1] == 5


class TestKeyOrders:
    """Rows of one chunk in any key order, neighbours of the same keys or of others: each row's
    fields are put in leaf order on their own (``sort_fields``), and every leaf decides."""

    @given(
        orders=st.lists(st.permutations(sorted(TestVouches.CONTENT)), min_size=2, max_size=6),
        altered=st.integers(0, 5),
    )
    def test_each_row_is_judged_on_its_own_keys(
        self, orders: list[list[str]], altered: int
    ) -> None:
        rows = []
        for seq, order in enumerate(orders):
            content = {key: TestVouches.CONTENT[key] for key in order}
            if seq % 2:  # a neighbour with one more key of its own
                content["metadata"] = {**content["metadata"], f"k{seq}": "v"}
            row = stored_row(content, seq)
            rows.append((seq, *row[1:]))
        # stored_row writes the leaf for SEQ; each row's own leaf is what its seq commits to
        rows = [tamper_seq(row) for row in rows]
        if altered < len(rows):
            rows[altered] = tamper(rows[altered], (9 + QUERY_COLUMNS.index("action"), "x"))
        chunk = vouch_rows(rows, 0, len(rows), TENANT, frozenset())
        vouched = [r[0] for r in rows if r[0] != altered]
        assert chunk.vouched == len(vouched)
        assert [row[0] for row in chunk.rest] == ([altered] if altered < len(rows) else [])
        assert [leaf is not None for leaf in chunk.leaves] == [
            seq != altered for seq in range(len(rows))
        ]


def tamper_seq(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` (written by ``stored_row`` for position ``SEQ``) with the leaf of its own seq."""
    content = orjson.loads(row[3])
    salts = unpack_salts(content, row[4])
    wire = {"id": EVENT, "tenant_id": TENANT, "seq": row[0], "received_at": WHEN, **content}
    return (*row[:5], event_leaf_hash(wire, salts, {}), *row[6:])

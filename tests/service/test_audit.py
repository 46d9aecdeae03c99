"""The auditor's fsck and offline dump verification catch every kind of tampering, by name."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.model.strategies import event_contents
from trailkeep.api.services import Services
from trailkeep.cli.app import app
from trailkeep.client.verify import DUMP_FORMAT, verify_dump
from trailkeep.errors import IntegrityError, TrailkeepError
from trailkeep.model.commitments import COMMITTED_OBJECTS, field_paths, unflatten
from trailkeep.model.evidence import event_leaf_hash
from trailkeep.query.fulltext import search_document
from trailkeep.service import dump as dump_module
from trailkeep.service.audit import _run as run_module
from trailkeep.service.audit import audit_tenant
from trailkeep.service.audit._leaves import FieldsText, RowPlans, fulltext_fields, shape
from trailkeep.service.audit._rollups import RollupTally
from trailkeep.service.dump import dump_lines
from trailkeep.settings import Settings
from trailkeep.storage._facets import rollup_counts
from trailkeep.storage.rows import QUERY_COLUMNS, filter_values, pack_salts

N = 40
EVENT = "evt_01JDAB3K9Q7M2X5V8N4R6T0WYZ"
WHEN = "2026-11-23T10:00:05.123456Z"


@pytest.fixture
def seeded(services: Services) -> Services:
    services.tenants.create_tenant("acme")
    for chunk in range(4):
        events = [
            services.events.prepare(
                {"action": f"a.{chunk}.{i}", "actor": {"id": f"u{i}"}, "metadata": {"n": i}}
            )
            for i in range(N // 4)
        ]
        services.store.append("acme", events).result()
        services.log.sign_pending()
    return services


def db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.database.removeprefix("sqlite:///"), isolation_level=None)


def event_id(conn: sqlite3.Connection, seq: int) -> str:
    row = conn.execute("SELECT id FROM events WHERE seq = ?", (seq,)).fetchone()
    return str(row[0])


def _change_field(c: sqlite3.Connection) -> None:
    body = orjson.loads(c.execute("SELECT body FROM events WHERE seq = 7").fetchone()[0])
    body["actor"]["id"] = "mallory"
    c.execute("UPDATE events SET body = ? WHERE seq = 7", (orjson.dumps(body),))


def _swap(c: sqlite3.Connection) -> None:
    c.execute("UPDATE events SET seq = -1 WHERE seq = 7")
    c.execute("UPDATE events SET seq = 7 WHERE seq = 8")
    c.execute("UPDATE events SET seq = 8 WHERE seq = -1")


TAMPERING: list[tuple[str, Callable[[sqlite3.Connection], None], str, int | None]] = [
    ("change-field", _change_field, "altered", 7),
    ("delete-row", lambda c: c.execute("DELETE FROM events WHERE seq = 7"), "missing", 7),
    ("swap-rows", _swap, "altered", 7),
    ("truncate-tail", lambda c: c.execute("DELETE FROM events WHERE seq >= 35"), "missing", 35),
    (
        "change-stored-hash",
        lambda c: c.execute(
            "UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 7"
        ),
        "altered",
        7,
    ),
    (
        "replace-checkpoint",
        lambda c: c.execute(
            "UPDATE checkpoints SET note = replace(note, 'test', 'evil') WHERE size = 20"
        ),
        "checkpoint",
        None,
    ),
    (
        "change-tree-node",
        lambda c: c.execute(
            "UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 1"
        ),
        "tree-node",
        None,
    ),
    (
        "remove-salt",
        lambda c: c.execute("UPDATE events SET salts = substr(salts, 17) WHERE seq = 7"),
        "field",
        7,
    ),
]


class TestAudit:
    """``audit_tenant`` finds each tampering and names the event when there is one."""

    def test_clean_database_passes(self, seeded: Services) -> None:
        verifier = seeded.log.signer.verifier()
        report = audit_tenant(seeded.store, "acme", verifier, "test.trailkeep/acme")
        assert report.ok, report.problems
        assert (report.events, report.checkpoints) == (N, 4)

    @pytest.mark.parametrize(
        ("tamper", "kind", "seq"), [pytest.param(t, k, s, id=i) for i, t, k, s in TAMPERING]
    )
    def test_tampering_is_found(
        self,
        seeded: Services,
        settings: Settings,
        tamper: Callable[[sqlite3.Connection], None],
        kind: str,
        seq: int | None,
    ) -> None:
        conn = db(settings)
        tamper(conn)
        # The finding names the row now sitting at that position (for a swap, the moved one).
        expected_id = event_id(conn, seq) if seq is not None and kind != "missing" else None
        conn.close()
        verifier = seeded.log.signer.verifier()
        report = audit_tenant(seeded.store, "acme", verifier, "test.trailkeep/acme")
        assert not report.ok
        first = next(p for p in report.problems if p.kind == kind)
        if seq is not None:
            assert first.seq == seq
        if expected_id is not None:
            assert first.event_id == expected_id

    @pytest.mark.parametrize(
        "chunk", [pytest.param(2, id="chunk-2"), pytest.param(8, id="chunk-8")]
    )
    def test_chunk_size_changes_no_finding(
        self, seeded: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch, chunk: int
    ) -> None:
        """Chunks that fill whole aligned subtrees are hashed level by level, the others leaf
        by leaf: both give the same roots and findings (a changed node, an altered leaf)."""
        verifier = seeded.log.signer.verifier()
        conn = db(settings)
        conn.execute("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 1")
        conn.execute("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 1 AND idx = 13")
        conn.execute("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 33")
        conn.close()
        whole = audit_tenant(seeded.store, "acme", verifier, "test.trailkeep/acme")
        monkeypatch.setattr(run_module, "_CHUNK", chunk)
        chunked = audit_tenant(seeded.store, "acme", verifier, "test.trailkeep/acme")
        assert sorted(map(repr, chunked.problems)) == sorted(map(repr, whole.problems))
        assert [p.kind for p in whole.problems].count("tree-node") == 2

    def test_cli_reports_and_fails(self, seeded: Services, settings: Settings) -> None:
        args = [
            "verify",
            "database",
            "--database",
            settings.database,
            "--signing-key",
            str(settings.signing_key),
        ]
        ok = CliRunner().invoke(app, args)
        assert ok.exit_code == 0, ok.output
        assert f"acme: {N} events, 4 checkpoints verify" in ok.stdout
        conn = db(settings)
        victim = event_id(conn, 7)
        _change_field(conn)
        conn.close()
        bad = CliRunner().invoke(app, args)
        assert bad.exit_code == 2
        assert f"acme [altered] seq 7, event {victim}" in bad.stdout


class TestDump:
    """A dump verifies offline, and any change to it is caught with the event named."""

    def _dump(self, services: Services) -> list[bytes]:
        return list(dump_lines(services.store, "acme"))

    def test_round_trip(self, seeded: Services) -> None:
        lines = self._dump(seeded)
        key = seeded.log.signer.verifier().key_string()
        report = verify_dump(lines, key)
        assert (report.events, report.checkpoint.size) == (N, N)
        assert dump_module.DUMP_FORMAT == DUMP_FORMAT

    def _edit(self, lines: list[bytes], index: int, edit: Callable[[dict], None]) -> list[bytes]:  # type: ignore[type-arg]
        record = orjson.loads(lines[index])
        edit(record)
        return [*lines[:index], orjson.dumps(record), *lines[index + 1 :]]

    @pytest.mark.parametrize(
        ("mutate", "needle"),
        [
            pytest.param(lambda ls: ls[:5] + ls[6:], "expected seq 4", id="dropped-event"),
            pytest.param(lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "expected seq 0", id="swapped"),
            pytest.param(lambda ls: ls[:-1], "covers 40", id="truncated"),
            pytest.param(lambda ls: [*ls, ls[-1]], "expected seq 40", id="duplicated-tail"),
            pytest.param(lambda ls: [b"{}", *ls[1:]], "header", id="no-header"),
            pytest.param(
                lambda ls: [ls[0], b"garbage", *ls[2:]], "line 2 is not JSON", id="garbage"
            ),
        ],
    )
    def test_structural_tampering(
        self, seeded: Services, mutate: Callable[[list[bytes]], list[bytes]], needle: str
    ) -> None:
        lines = mutate(self._dump(seeded))
        with pytest.raises(IntegrityError, match=needle):
            verify_dump(lines, seeded.log.signer.verifier().key_string())

    def test_changed_field_names_event(self, seeded: Services) -> None:
        lines = self._dump(seeded)
        victim = orjson.loads(lines[8])["event"]["id"]
        bad = self._edit(lines, 8, lambda r: r["event"]["metadata"].update(n=999))
        with pytest.raises(IntegrityError, match=f"event {victim} \\(seq 7\\)"):
            verify_dump(bad, seeded.log.signer.verifier().key_string())

    def test_forged_hash_breaks_root(self, seeded: Services) -> None:
        from trailkeep.model.evidence import decode_salts, event_leaf_hash

        lines = self._dump(seeded)

        def forge(record: dict) -> None:  # type: ignore[type-arg]
            record["event"]["action"] = "forged"
            leaf = event_leaf_hash(record["event"], decode_salts(record["salts"]), {})
            record["event"]["hash"] = leaf.hex()

        with pytest.raises(IntegrityError, match="another root"):
            verify_dump(self._edit(lines, 3, forge), seeded.log.signer.verifier().key_string())

    def test_cli(self, seeded: Services, settings: Settings, tmp_path: Path) -> None:
        out = tmp_path / "acme.jsonl"
        result = CliRunner().invoke(
            app, ["dump", "--tenant", "acme", "-o", str(out), "--database", settings.database]
        )
        assert result.exit_code == 0, result.output
        key = seeded.log.signer.verifier().key_string()
        ok = CliRunner().invoke(app, ["verify", "dump", str(out), "--key", key])
        assert ok.exit_code == 0, ok.output
        assert f"{N} events of acme" in ok.stdout
        lines = out.read_bytes().splitlines(keepends=True)
        out.write_bytes(b"".join(lines[:10] + lines[11:]))
        bad = CliRunner().invoke(app, ["verify", "dump", str(out), "--key", key])
        assert bad.exit_code == 2
        assert "FAILED" in bad.stderr


@pytest.fixture(scope="module")
def shared_fields() -> FieldsText:
    """One joiner for a whole table of rows, as a plan keeps one for all its rows."""
    return FieldsText()


def _vouched(content: dict[str, Any], packed: bytes, leaf: bytes, seq: int = 3) -> bool:
    """Whether the fast path vouches that ``content`` with ``packed`` salts has ``leaf``."""
    plan = RowPlans("acme").plan(content)
    if plan is None:
        return False
    found, _, _ = plan.read(content, packed, seq, EVENT, WHEN, leaf)
    return found is not None


class TestRowPlans:
    """A shape's compiled reader gives exactly what the reference functions give, and the
    fast path vouches for a row only with the exact path's leaf (and does, in the common
    case, or the audit would be slow, not wrong)."""

    @staticmethod
    def _row(content: dict[str, Any], seed: int) -> tuple[bytes, bytes | None]:
        """Packed salts for the content's paths, and its exact leaf (None: no leaf exists)."""
        paths = sorted(field_paths(content))
        salts = {p: hashlib.sha256(f"{seed}:{p}".encode()).digest()[:16] for p in paths}
        wire = {"id": EVENT, "tenant_id": "acme", "seq": 3, "received_at": WHEN, **content}
        try:
            leaf = event_leaf_hash(wire, salts, {})
        except TrailkeepError:
            leaf = None
        return pack_salts(salts) or b"", leaf

    @given(content=event_contents)
    def test_shape_names_every_committed_object(self, content: dict[str, Any]) -> None:
        objects = [
            tuple(v) if type(v) is dict else None for v in map(content.get, COMMITTED_OBJECTS)
        ]
        assert shape(content) == (tuple(content), *objects)

    @given(content=event_contents)
    def test_columns_and_text_equal_the_references(self, content: dict[str, Any]) -> None:
        plan = RowPlans("acme").plan(content)
        if plan is not None:
            _, columns, text = plan.read(content, bytes(16 * len(plan.keys)), 0, EVENT, WHEN, b"")
            assert columns == filter_values(content)
            assert fulltext_fields(text) == search_document(content).fields
            assert plan.fields(text) == search_document(content).fields

    @given(content=event_contents, seed=st.integers())
    def test_never_vouches_for_another_leaf(self, content: dict[str, Any], seed: int) -> None:
        packed, leaf = self._row(content, seed)
        for candidate in (leaf, bytes(32), hashlib.sha256(packed).digest()):
            if candidate is not None and _vouched(content, packed, candidate):
                assert candidate == leaf

    @given(content=event_contents, seed=st.integers(), data=st.data())
    def test_a_changed_value_is_never_vouched_for(
        self, content: dict[str, Any], seed: int, data: st.DataObject
    ) -> None:
        packed, leaf = self._row(content, seed)
        assume(leaf is not None)
        assert leaf is not None
        values = field_paths(content)
        assume(values)
        path = data.draw(st.sampled_from(sorted(values)))
        values[path] = data.draw(st.text(max_size=5) | st.integers(0, 3) | st.booleans())
        assume(values[path] != field_paths(content)[path])
        assert not _vouched(unflatten(values), packed, leaf)

    @pytest.mark.parametrize(
        ("values", "text"),
        [
            pytest.param(("a", 1, True, None), "a\n1", id="str-int-bool-null"),
            pytest.param((1, "b", 2.5, False), "1\nb\n2.5", id="types-moved"),
            pytest.param(("a", "b", "c", "d"), "a\nb\nc\nd", id="all-strings"),
            pytest.param(("a", {"x": ["y", 3]}, True, None), "a\ny\n3", id="nested"),
            pytest.param(("a", 1, True, None), "a\n1", id="first-again"),
        ],
    )
    def test_fields_text_follows_each_rows_types(
        self, shared_fields: FieldsText, values: tuple[Any, ...], text: str
    ) -> None:
        """One joiner per shape sees rows whose types change; each row gets its own text."""
        assert shared_fields(values) == text == fulltext_fields(values)

    def test_answers_the_common_case(self) -> None:
        content = {
            "action": "document.update",
            "timestamp": WHEN,
            "outcome": "success",
            "actor": {"id": "u1", "email": "u1@example.com"},
            "metadata": {"n": 3, "ok": True},
            "message": "hello",
        }
        packed, leaf = self._row(content, 1)
        assert leaf is not None
        assert _vouched(content, packed, leaf)
        assert not _vouched(content, packed, leaf, seq=4)


rollup_rows = st.lists(
    st.tuples(
        st.sampled_from(["2026-11-23T10:00:05.000000Z", "2026-11-23T11:59:00.000000Z",
                         "2026-11-24T00:00:00.000000Z"]),
        *[st.none() | st.sampled_from(["a", "b", "c"]) for _ in range(len(QUERY_COLUMNS) - 1)],
    ),
    max_size=30,
)  # fmt: skip


class TestRollupTally:
    """The recount is what the writer's ``rollup_counts`` adds up, event by event."""

    @given(rows=rollup_rows)
    def test_equals_the_writers_counts(self, rows: list[tuple[str | None, ...]]) -> None:
        tally = RollupTally()
        tally.add(rows[: len(rows) // 2])
        tally.add(rows[len(rows) // 2 :])
        writer: dict[tuple[str, str, str], int] = {}
        as_dicts = [dict(zip(QUERY_COLUMNS, row, strict=True)) for row in rows]
        for _, dim, period, value, n in rollup_counts("acme", as_dicts):
            writer[(dim, period, value)] = writer.get((dim, period, value), 0) + n
        assert tally.expected() == writer


class TestDatabaseCommand:
    """``trailkeep verify database --deep`` checks the full-text index itself, once per
    database; the default run checks the text it indexes, row by row."""

    def _args(self, settings: Settings) -> list[str]:
        return ["verify", "database", "--database", settings.database,
                "--signing-key", str(settings.signing_key)]  # fmt: skip

    def test_damaged_fulltext_index(self, seeded: Services, settings: Settings) -> None:
        conn = db(settings)
        conn.execute("DELETE FROM events_fts_data WHERE id > 10")  # the index, not its text
        conn.close()
        bad = CliRunner().invoke(app, [*self._args(settings), "--deep"])
        assert bad.exit_code == 2, bad.output
        assert "acme: 40 events, 4 checkpoints verify" in bad.stdout
        assert "full-text index" in bad.stdout

    def test_fulltext_index_structure_is_deep_only(
        self, seeded: Services, settings: Settings
    ) -> None:
        """The default run reads the indexed text, not the index's own pages (re-tokenizing
        everything costs more than the rest of the audit)."""
        conn = db(settings)
        conn.execute("DELETE FROM events_fts_data WHERE id > 10")
        conn.close()
        quick = CliRunner().invoke(app, self._args(settings))
        assert quick.exit_code == 0, quick.output
        assert "full-text index" not in quick.stdout

    def test_gap_option(self, seeded: Services, settings: Settings) -> None:
        result = CliRunner().invoke(app, [*self._args(settings), "--max-checkpoint-gap", "0"])
        assert result.exit_code == 0, result.output

"""The auditor's fsck and offline dump verification catch every kind of tampering, by name."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from trailkeep.api.services import Services
from trailkeep.cli.app import app
from trailkeep.client.verify import DUMP_FORMAT, verify_dump
from trailkeep.errors import IntegrityError
from trailkeep.service import dump as dump_module
from trailkeep.service.audit import audit_tenant
from trailkeep.service.dump import dump_lines
from trailkeep.settings import Settings

N = 40


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
        lambda c: c.execute("UPDATE events SET leaf_hash = zeroblob(32) WHERE seq = 7"),
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
        assert f"seq 7, event {victim}" in bad.stdout


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

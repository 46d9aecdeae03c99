"""A signer remembers, beside its key, the last checkpoint it signed per tenant, and never signs
(nor lets anyone append to) a tree that does not extend it: a restored or truncated database
is refused for writes until an operator accepts it."""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from trailkeep.api.services import Services
from trailkeep.client.verify import verify_checkpoints
from trailkeep.errors import InvalidInputError
from trailkeep.merkle import Signer
from trailkeep.service.forks import LogForkedError
from trailkeep.service.signer_state import Remembered, SignerState, state_path
from trailkeep.settings import Settings
from trailkeep.storage.base import StoredCheckpoint


def _entry(tenant: str, size: int, fill: int = 1) -> Remembered:
    return Remembered(tenant, f"test/{tenant}", size, bytes([fill]) * 32, "note\n", "then")


@pytest.fixture
def signer() -> Signer:
    return Signer.generate("test")


@pytest.fixture
def state(tmp_path: Path, signer: Signer) -> SignerState:
    return SignerState.beside(tmp_path / "signing.key", signer.verifier())


class TestStateFile:
    """The state file is private, written whole or not at all, and belongs to one key."""

    def test_missing_file_is_empty(self, state: SignerState) -> None:
        assert state.read() == {}

    def test_round_trip_beside_the_key(self, state: SignerState, tmp_path: Path) -> None:
        with state.transaction() as txn:
            assert txn is not None
            txn.remember(_entry("acme", 15))
        assert state.path == state_path(tmp_path / "signing.key") == tmp_path / "signing.key.state"
        assert state.read() == {"acme": _entry("acme", 15)}

    def test_files_are_private(self, state: SignerState) -> None:
        old = os.umask(0)
        try:
            with state.transaction() as txn:
                assert txn is not None
                txn.remember(_entry("acme", 1))
        finally:
            os.umask(old)
        lock = state.path.with_name(state.path.name + ".lock")
        for path in (state.path, lock):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    def test_no_temporary_file_is_left(self, state: SignerState, tmp_path: Path) -> None:
        for size in range(3):
            with state.transaction() as txn:
                assert txn is not None
                txn.remember(_entry("acme", size))
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "signing.key.state",
            "signing.key.state.lock",
        ]

    def test_a_failed_transaction_writes_nothing(self, state: SignerState) -> None:
        def fail_midway() -> None:
            with state.transaction() as txn:
                assert txn is not None
                txn.remember(_entry("acme", 1))
                raise RuntimeError

        with pytest.raises(RuntimeError):
            fail_midway()
        assert not state.path.exists()

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"{not json", id="not-json"),
            pytest.param(b'{"format": "other/v9", "tenants": {}}', id="other-format"),
            pytest.param(
                b'{"format": "trailkeep-signer-state/v1", "tenants": {"a": {"size": -1}}}',
                id="bad-entry",
            ),
        ],
    )
    def test_a_malformed_file_is_refused_not_ignored(
        self, state: SignerState, content: bytes
    ) -> None:
        state.path.write_bytes(content)
        with pytest.raises(InvalidInputError, match=str(state.path)):
            state.read()

    def test_a_file_of_another_key_is_refused(self, state: SignerState, tmp_path: Path) -> None:
        with state.transaction() as txn:
            assert txn is not None
            txn.remember(_entry("acme", 1))
        other = SignerState(state.path, Signer.generate("test").verifier())
        with pytest.raises(InvalidInputError, match="belongs to the key"):
            other.read()

    def test_a_non_waiting_transaction_gives_up_while_the_lock_is_held(
        self, state: SignerState, signer: Signer
    ) -> None:
        other = SignerState(state.path, signer.verifier())
        with state.transaction() as held:
            assert held is not None
            with other.transaction(wait=False) as txn:
                assert txn is None
        with other.transaction(wait=False) as txn:
            assert txn is not None

    def test_concurrent_processes_merge_their_tenants(
        self, state: SignerState, signer: Signer
    ) -> None:
        """Processes sharing a key file each change only their tenants; none is lost."""
        script = textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from trailkeep.merkle import Verifier
            from trailkeep.service.signer_state import Remembered, SignerState
            state = SignerState(Path({str(state.path)!r}), Verifier.parse({signer.verifier().key_string()!r}))
            me = sys.argv[1]
            for size in range(1, 21):
                with state.transaction() as txn:
                    txn.remember(Remembered(me, "test/" + me, size, bytes(32), "n", "t"))
            """  # noqa: E501
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", script, f"t{i}"], env=os.environ)
            for i in range(4)
        ]
        assert [p.wait(timeout=60) for p in procs] == [0] * 4
        assert {t: r.size for t, r in state.read().items()} == {f"t{i}": 20 for i in range(4)}


# -- the service: a restored database ---------------------------------------------------------


def _db_path(settings: Settings) -> Path:
    return Path(settings.database.removeprefix("sqlite:///"))


def _append(services: Services, n: int, tag: str) -> list[int]:
    events = [services.events.prepare({"action": f"{tag}.{i}", "message": tag}) for i in range(n)]
    return [a.event.seq for a in services.store.append("acme", events).result()]


def _backup(settings: Settings, to: Path) -> None:
    """SQLite's online backup API, as an operator's ``.backup`` would take it."""
    with sqlite3.connect(_db_path(settings)) as src, sqlite3.connect(to) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _restore(settings: Settings, backup: Path) -> None:
    path = _db_path(settings)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(backup.read_bytes())


@pytest.fixture
def restored(settings: Settings, tmp_path: Path) -> Iterator[tuple[Services, StoredCheckpoint]]:
    """Ingest 10, back up, ingest 5 and sign size 15, stop, restore the backup, start again."""
    first = Services.build(settings)
    first.tenants.create_tenant("acme")
    _append(first, 10, "kept")
    first.log.sign_pending()
    _backup(settings, tmp_path / "backup.db")
    _append(first, 5, "lost")
    (fifteen,) = first.log.sign_pending()
    first.close()
    _restore(settings, tmp_path / "backup.db")
    again = Services.build(settings)
    yield again, fifteen
    again.close()


def _b64(value: bytes) -> str:
    import base64

    return base64.b64encode(value).decode()


class TestRestoredDatabase:
    """A database older than the last signed checkpoint takes no write and gets no signature."""

    def test_appends_are_refused_naming_both_sizes_roots_and_the_way_out(
        self, restored: tuple[Services, StoredCheckpoint]
    ) -> None:
        services, fifteen = restored
        with pytest.raises(LogForkedError) as caught:
            _append(services, 5, "new")
        message = caught.value.message
        head = services.store.tree_head("acme")
        assert caught.value.code == "LOG_FORKED"
        assert "size 10" in message
        assert _b64(head.root()) in message
        assert "size 15" in message
        assert _b64(fifteen.root_hash) in message
        assert "trailkeep signer accept-database --tenant acme" in message
        assert services.store.log_size("acme") == 10

    def test_nothing_is_signed_and_reads_go_on(
        self, restored: tuple[Services, StoredCheckpoint]
    ) -> None:
        services, _ = restored
        with pytest.raises(LogForkedError):
            _append(services, 1, "new")
        assert services.log.sign_pending() == []
        assert services.store.latest_checkpoint("acme").size == 10  # type: ignore[union-attr]
        assert services.store.list_events("acme", _query()).log_size == 10
        assert len(services.log.consistency_proof("acme", 3, 10)) > 0

    def test_redaction_is_a_write_and_is_refused_too(
        self, restored: tuple[Services, StoredCheckpoint]
    ) -> None:
        services, _ = restored
        event_id = services.store.scan_evidence("acme", 0, 1)[0].event.id
        import asyncio

        with pytest.raises(LogForkedError):
            asyncio.run(services.redaction.redact("acme", event_id, ["message"], "admin"))

    def test_the_fork_is_logged_once(
        self, restored: tuple[Services, StoredCheckpoint], caplog: pytest.LogCaptureFixture
    ) -> None:
        services, _ = restored
        with caplog.at_level(logging.CRITICAL):
            for _ in range(5):
                with pytest.raises(LogForkedError):
                    _append(services, 1, "new")
                services.log.sign_pending()
        assert sum("LOG FORK" in r.getMessage() for r in caplog.records) <= 1

    def test_a_head_as_large_with_another_root_is_refused_at_start(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        """Someone without the state (a process with another key file) refilled the
        restored log to size 15 with other events: same size, another root."""
        first = Services.build(settings)
        first.tenants.create_tenant("acme")
        _append(first, 10, "kept")
        _backup(settings, tmp_path / "backup.db")
        _append(first, 5, "lost")
        (fifteen,) = first.log.sign_pending()
        first.close()
        _restore(settings, tmp_path / "backup.db")
        other = Services.build(settings.model_copy(update={"signing_key": tmp_path / "o.key"}))
        _append(other, 6, "refill")
        other.close()
        services = Services.build(settings)
        try:
            fork = services.log.guard.fork("acme")
            assert fork is not None
            assert fork.head_size == 16
            assert fork.root_at_signed_size not in (None, fifteen.root_hash)
            with pytest.raises(LogForkedError, match="its root at size 15 is"):
                _append(services, 1, "new")
            assert services.log.sign_pending() == []
        finally:
            services.close()

    def test_a_tail_deleted_under_a_running_server_is_refused_at_the_next_append(
        self, services: Services, settings: Settings
    ) -> None:
        services.tenants.create_tenant("acme")
        _append(services, 10, "a")
        services.log.sign_pending()
        (head_at_6,) = _frontier_at(services, 6)
        with sqlite3.connect(_db_path(settings), isolation_level=None) as conn:
            conn.execute("DELETE FROM events WHERE seq >= 6")
            conn.execute("DELETE FROM checkpoints WHERE size > 6")
            conn.execute("UPDATE tree_heads SET size = 6, frontier = ?", (head_at_6,))
        conn.close()
        with pytest.raises(LogForkedError, match="lacks 4 signed events"):
            _append(services, 1, "new")


def _frontier_at(services: Services, size: int) -> tuple[bytes]:
    from trailkeep.merkle import subtree_ids

    ids = subtree_ids(size)
    return (b"".join(services.store.read_nodes("acme", ids)),)


def _query():  # type: ignore[no-untyped-def]
    from trailkeep.query.filters import EventQuery

    return EventQuery(limit=10)


class TestSigning:
    """Checkpoints are remembered before anyone can see them, and always extend the last."""

    def test_the_state_is_durable_before_the_checkpoint_is_stored(self, services: Services) -> None:
        services.tenants.create_tenant("acme")
        _append(services, 3, "a")
        seen: list[int] = []
        inner = services.store.add_checkpoint

        def add_checkpoint(checkpoint: StoredCheckpoint) -> bool:
            on_disk = orjson.loads(services.log.state.path.read_bytes())
            seen.append(on_disk["tenants"][checkpoint.tenant_id]["size"])
            return inner(checkpoint)

        services.store.add_checkpoint = add_checkpoint  # type: ignore[method-assign]
        (checkpoint,) = services.log.sign_pending()
        assert seen == [checkpoint.size] == [3]
        assert services.log.state.read()["acme"].note == checkpoint.note

    def test_a_checkpoint_remembered_but_never_stored_is_stored_as_signed(
        self, services: Services, settings: Settings
    ) -> None:
        """A crash between writing the state and storing the checkpoint loses nothing."""
        services.tenants.create_tenant("acme")
        _append(services, 3, "a")
        (signed,) = services.log.sign_pending()
        with sqlite3.connect(_db_path(settings), isolation_level=None) as conn:
            conn.execute("DELETE FROM checkpoints")
        conn.close()
        assert services.log.sign_pending() == [signed]
        assert services.store.latest_checkpoint("acme") == signed

    def test_a_signer_sharing_the_key_file_never_signs_behind_the_other(
        self, services: Services, settings: Settings
    ) -> None:
        """Two processes, one key file and one database: each signs only past what the
        state file says, and every checkpoint extends the previous one."""
        services.tenants.create_tenant("acme")
        second = Services.build(settings)
        try:
            for round_ in range(4):
                _append(services if round_ % 2 else second, 3, f"r{round_}")
                (services if round_ % 2 == 0 else second).log.sign_pending()
            checkpoints = services.store.list_checkpoints("acme")
            assert [c.size for c in checkpoints] == [3, 6, 9, 12]
            assert services.log.state.read()["acme"].size == 12
            for old, new in itertools.pairwise(checkpoints):
                proof = services.log.consistency_proof("acme", old.size, new.size)
                verify_checkpoints(old.note, new.note, proof, services.log.signer.verifier())
        finally:
            second.close()


class TestCopiesOfTheKeyFile:
    """Processes each holding a copy of the key file (each with its own state) remember what
    the others signed, so none of them signs a fork of it after a rewind."""

    def test_a_rewind_is_refused_by_the_process_that_did_not_sign(
        self, services: Services, settings: Settings, tmp_path: Path
    ) -> None:
        services.tenants.create_tenant("acme")
        (tmp_path / "copy").mkdir()
        copy = tmp_path / "copy" / "signing.key"
        copy.write_bytes(settings.signing_key.read_bytes())
        other = Services.build(settings.model_copy(update={"signing_key": copy}))
        try:
            _append(services, 6, "a")
            (head_at_6,) = _frontier_at(services, 6)
            _append(other, 4, "b")
            (signed,) = services.log.sign_pending()  # the first process signs size 10
            assert other.log.sign_pending() == []  # nothing left to sign for the other
            other.log.remember_stored()  # its checkpointer does this every few intervals
            assert other.log.state.read()["acme"].note == signed.note
            with sqlite3.connect(_db_path(settings), isolation_level=None) as conn:
                conn.execute("DELETE FROM events WHERE seq >= 6")
                conn.execute("DELETE FROM checkpoints WHERE size > 6")
                conn.execute("UPDATE tree_heads SET size = 6, frontier = ?", (head_at_6,))
            conn.close()
            with pytest.raises(LogForkedError, match="lacks 4 signed events"):
                _append(other, 1, "new")
        finally:
            other.close()

    def test_checkpoints_of_another_key_are_not_remembered(
        self, services: Services, settings: Settings, tmp_path: Path
    ) -> None:
        services.tenants.create_tenant("acme")
        other = Services.build(settings.model_copy(update={"signing_key": tmp_path / "o.key"}))
        try:
            _append(services, 2, "a")
            services.log.sign_pending()
            other.log.remember_stored()
            assert other.log.state.read() == {}
        finally:
            other.close()


class TestAcceptDatabase:
    """Only an operator's explicit decision lifts the refusal; it is itself audited."""

    def test_accepting_records_signs_and_reopens_writes(
        self, restored: tuple[Services, StoredCheckpoint]
    ) -> None:
        services, fifteen = restored
        accepted = services.log.accept_database("acme", "ops", "restored last night's backup")
        assert accepted is not None
        assert accepted.fork.signed.size == 15
        assert accepted.fork.head_size == 10
        event = accepted.event
        assert (event.seq, event.content["action"], event.content["category"]) == (
            10,
            "log.accept_database",
            "system",
        )
        assert event.content["message"] == "restored last night's backup"
        assert event.content["metadata"]["signed_root"] == _b64(fifteen.root_hash)
        assert accepted.checkpoint.size == 11
        assert services.store.latest_checkpoint("acme") == accepted.checkpoint
        remembered = services.log.state.read()["acme"]
        assert (remembered.size, remembered.accepted_at) == (11, accepted.checkpoint.signed_at)
        assert _append(services, 2, "after") == [11, 12]
        (next_checkpoint,) = services.log.sign_pending()
        assert next_checkpoint.size == 13

    def test_accepting_a_database_that_extends_the_state_changes_nothing(
        self, services: Services
    ) -> None:
        services.tenants.create_tenant("acme")
        _append(services, 2, "a")
        services.log.sign_pending()
        assert services.log.accept_database("acme", "ops") is None
        assert services.store.log_size("acme") == 2

    def test_a_running_server_learns_of_an_acceptance_by_another_process(
        self, restored: tuple[Services, StoredCheckpoint], settings: Settings
    ) -> None:
        """The operator's command runs beside the server; the server's next signing round
        reads the changed state file and allows writes again."""
        services, _ = restored
        with pytest.raises(LogForkedError):
            _append(services, 1, "refused")
        operator = Services.build(settings)
        try:
            assert operator.log.accept_database("acme", "ops") is not None
        finally:
            operator.close()
        services.log.sign_pending()
        assert _append(services, 1, "allowed") == [11]


class TestWhereTheStateLives:
    """``TRAILKEEP_SIGNER_STATE`` moves the state file; a server that cannot write it stops."""

    def test_elsewhere(self, settings: Settings, tmp_path: Path) -> None:
        elsewhere = tmp_path / "state.json"
        services = Services.build(settings.model_copy(update={"signer_state": elsewhere}))
        try:
            services.tenants.create_tenant("acme")
            _append(services, 1, "a")
            services.log.sign_pending()
        finally:
            services.close()
        assert not state_path(settings.signing_key).exists()
        assert orjson.loads(elsewhere.read_bytes())["tenants"]["acme"]["size"] == 1

    def test_unwritable_stops_the_server_at_start(self, settings: Settings, tmp_path: Path) -> None:
        (tmp_path / "a-file").write_text("")
        bad = tmp_path / "a-file" / "state.json"
        with pytest.raises(InvalidInputError, match="needs a writable, persistent directory"):
            Services.build(settings.model_copy(update={"signer_state": bad}))

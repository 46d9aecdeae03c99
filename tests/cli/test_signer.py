"""``trailkeep signer`` and ``verify database --checkpoint`` in-process, on a real SQLite file:
what they print, their exit codes, and that docs/cli.md names every option."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from trailkeep.api.services import Services
from trailkeep.cli.app import app
from trailkeep.merkle import Checkpoint, Signer
from trailkeep.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


@pytest.fixture
def signed(services: Services) -> Iterator[Services]:
    """A tenant with 4 events and a signed checkpoint of size 4."""
    services.tenants.create_tenant("acme")
    events = [services.events.prepare({"action": f"a{i}"}) for i in range(4)]
    services.store.append("acme", events).result()
    services.log.sign_pending()
    return services


def invoke(settings: Settings, *args: str) -> Result:
    env = {"TRAILKEEP_DATABASE": settings.database, "COLUMNS": "400"}
    return CliRunner().invoke(app, [*args, "--signing-key", str(settings.signing_key)], env=env)


class TestSignerStatus:
    """``signer status`` compares each remembered checkpoint with the database."""

    def test_ok_when_the_database_extends_every_one(
        self, signed: Services, settings: Settings
    ) -> None:
        result = invoke(settings, "signer", "status")
        assert result.exit_code == 0, result.output
        assert "OK acme: the database extends the checkpoint signed at size 4" in result.stdout

    def test_a_missing_key_is_a_clear_error(self, settings: Settings, tmp_path: Path) -> None:
        result = CliRunner().invoke(
            app, ["signer", "status", "--signing-key", str(tmp_path / "none.key")]
        )
        assert result.exit_code == 1
        assert "no signing key at" in result.stderr


class TestAcceptDatabase:
    """``signer accept-database`` changes nothing unless the database forks the log."""

    def test_nothing_to_accept(self, signed: Services, settings: Settings) -> None:
        result = invoke(settings, "signer", "accept-database", "--tenant", "acme")
        assert result.exit_code == 0, result.output
        assert "nothing to accept" in result.stdout
        assert signed.store.log_size("acme") == 4

    def test_a_tenant_never_signed(self, signed: Services, settings: Settings) -> None:
        result = invoke(settings, "signer", "accept-database", "--tenant", "globex")
        assert result.exit_code == 1
        assert "holds no checkpoint of tenant 'globex'" in result.stderr


class TestVerifyDatabaseCheckpoint:
    """``verify database --checkpoint FILE`` checks the database against a held checkpoint."""

    def _note(self, tmp_path: Path, signer: Signer, size: int, root: bytes) -> Path:
        path = tmp_path / f"held-{size}.txt"
        path.write_text(signer.sign_note(Checkpoint("test.trailkeep/acme", size, root).to_body()))
        return path

    def test_an_older_checkpoint_is_extended(
        self, signed: Services, settings: Settings, tmp_path: Path
    ) -> None:
        (checkpoint,) = signed.store.list_checkpoints("acme")[-1:]
        held = tmp_path / "held.txt"
        held.write_text(checkpoint.note)
        result = invoke(settings, "verify", "database", "--checkpoint", str(held))
        assert result.exit_code == 0, result.output
        assert f"the database extends the checkpoint of size 4 held in {held}" in result.stdout

    @pytest.mark.parametrize(
        ("size", "root", "says"),
        [
            pytest.param(6, bytes(32), "lacks 2 signed events", id="longer-than-the-database"),
            pytest.param(4, bytes(32), "its root at size 4 is", id="same-size-other-root"),
            pytest.param(2, bytes(32), "its root at size 2 is", id="prefix-with-other-root"),
        ],
    )
    def test_a_checkpoint_the_database_does_not_extend_fails(
        self,
        signed: Services,
        settings: Settings,
        tmp_path: Path,
        size: int,
        root: bytes,
        says: str,
    ) -> None:
        held = self._note(tmp_path, signed.log.signer, size, root)
        result = invoke(settings, "verify", "database", "--checkpoint", str(held))
        assert result.exit_code == 2, result.output
        assert "FAILED the database's log of tenant 'acme' (size 4" in result.stdout
        assert says in result.stdout

    def test_a_checkpoint_of_another_key_fails(
        self, signed: Services, settings: Settings, tmp_path: Path
    ) -> None:
        (checkpoint,) = signed.store.list_checkpoints("acme")[-1:]
        held = self._note(tmp_path, Signer.generate("test.trailkeep"), 4, checkpoint.root_hash)
        result = invoke(settings, "verify", "database", "--checkpoint", str(held))
        assert result.exit_code == 2, result.output
        assert f"FAILED checkpoint in {held}" in result.stdout

    def test_an_unreadable_file_is_a_clear_error(
        self, signed: Services, settings: Settings, tmp_path: Path
    ) -> None:
        result = invoke(settings, "verify", "database", "--checkpoint", str(tmp_path / "none"))
        assert result.exit_code == 1
        assert "cannot read checkpoint" in result.stderr


def _options(command: Any) -> list[str]:
    return [opt for p in command.params for opt in p.opts if opt.startswith("--")]


class TestDocs:
    """docs/cli.md documents the signer commands and ``verify database`` with every option."""

    @pytest.mark.parametrize("name", ["signer status", "signer accept-database", "verify database"])
    def test_documented(self, name: str) -> None:
        command: Any = typer.main.get_command(app)
        for part in name.split():
            command = command.commands[part]
        text = DOCS.read_text()
        assert f"trailkeep {name}" in text
        missing = [o for o in _options(command) if o != "--help" and f"`{o}" not in text]
        assert not missing, f"docs/cli.md lacks {missing} of `trailkeep {name}`"


def test_verify_database_gap_default_is_the_audits() -> None:
    """The CLI restates the audit's default checkpoint gap (to keep ``--help`` light)."""
    from trailkeep.cli.verify import DEFAULT_MAX_GAP as CLI_DEFAULT
    from trailkeep.service.audit import DEFAULT_MAX_GAP

    assert CLI_DEFAULT == DEFAULT_MAX_GAP

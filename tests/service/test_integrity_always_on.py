"""No runtime switch can write a log without its tree (issue 14, item 8).

``integrity=false`` used to store events without commitments or leaves; one such event broke
its tenant's tree for good. The setting is gone, and every way of opening a store computes
leaves.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import ValidationError

from trailkeep.api.services import Services
from trailkeep.service.events import EventService, prepare_event
from trailkeep.service.stores import open_store
from trailkeep.settings import Settings


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        database=f"sqlite:///{tmp_path / 'db.sqlite'}",
        signing_key=tmp_path / "signing.key",
        sqlite_synchronous="NORMAL",
    )


class TestNoSwitch:
    """Neither settings, nor the environment, nor the service API can turn integrity off."""

    def test_setting_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="integrity"):
            Settings(integrity=False, database=f"sqlite:///{tmp_path / 'x.db'}")  # type: ignore[call-arg]

    @pytest.mark.parametrize(
        "function",
        [
            pytest.param(prepare_event, id="prepare_event"),
            pytest.param(EventService.__init__, id="EventService"),
            pytest.param(open_store, id="open_store"),
        ],
    )
    def test_no_parameter(self, function: object) -> None:
        assert "integrity" not in inspect.signature(function).parameters  # type: ignore[arg-type]

    @pytest.mark.asyncio
    async def test_old_environment_variable_changes_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With ``TRAILKEEP_INTEGRITY=false`` still set, events get leaves, the tenant keeps
        appending and its checkpoints and proofs verify."""
        monkeypatch.setenv("TRAILKEEP_INTEGRITY", "false")
        services = Services.build(settings_for(tmp_path))
        try:
            services.tenants.create_tenant("acme")
            first = await services.events.ingest("acme", [{"action": "a"}], batch=False)
            assert first[0].event.leaf_hash is not None
            more = await services.events.ingest(
                "acme", [{"action": "b"}, {"action": "c"}], batch=True
            )
            assert [a.event.seq for a in more] == [1, 2]
            assert all(a.event.leaf_hash is not None for a in more)
            services.log.sign_pending()
            checkpoint = services.store.latest_checkpoint("acme")
            assert checkpoint is not None
            assert checkpoint.size == 3
        finally:
            services.close()

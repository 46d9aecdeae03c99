"""Retention as a service: runs by policy, stops for a legal hold, runs in the background, and
``verify database`` treats a pruned position as leaf-only while catching what is wrong."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from trailkeep.api.services import Services
from trailkeep.errors import ConflictError, NotFoundError
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.query.filters import EventQuery
from trailkeep.service.admin_trail import Actor
from trailkeep.service.audit import audit_tenant
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.retention import (
    PRUNE_ACTION,
    SQLITE_IDLE_DUTY,
    RetentionService,
    RetentionTask,
)
from trailkeep.settings import Settings
from trailkeep.storage.base import PruneBatch

EVENTS = 30


def _seed(services: Services, tenant: str = "acme", settings: dict[str, Any] | None = None) -> None:
    services.tenants.create_tenant(tenant)
    if settings:
        services.tenants.update_settings(tenant, settings)
    now = utcnow()
    contents = [
        {
            "timestamp": format_time(now - timedelta(days=100 - i)),  # days 100 .. 71 ago
            "action": "a",
            "message": f"m{i}",
        }
        for i in range(EVENTS)
    ]
    events = [prepare_event(c, Limits()) for c in contents]
    services.store.append(tenant, events).result()


def _records(services: Services, tenant: str = "acme") -> list[Any]:
    where = services.events.condition({"action": [PRUNE_ACTION]})
    return services.store.select(tenant, EventQuery(where, limit=100))


class TestRetentionService:
    """A run prunes what its policy expires, in batches, and records itself once."""

    def test_prunes_by_policy_in_batches(self, services: Services) -> None:
        _seed(services, settings={"retention_days": 80})
        retention = RetentionService(services.store, batch_size=4, pause=0, duty=1)
        progress: list[int] = []
        run = retention.prune_tenant(
            "acme", actor=Actor("k-1", "api_key"), progress=progress.append
        )
        # 100..80 days ago are older than the cutoff (the one of 80 days was seeded earlier)
        assert (run.count, run.first_seq, run.last_seq, run.done) == (21, 0, 20, True)
        assert progress == [4, 8, 12, 16, 20, 21]
        [record] = _records(services)
        assert record.content["actor"] == {"id": "k-1", "type": "api_key"}
        assert record.content["metadata"]["policy"] == {"retention_days": 80}

    @pytest.mark.parametrize(
        ("uncontended", "idle_duty", "rest"),
        [(True, 1.0, 0.001), (True, 0.5, 0.2), (False, 1.0, 0.6), (False, 0.5, 0.6)],
    )
    def test_rests_by_the_idle_duty_after_a_batch_no_write_waited_for(
        self,
        services: Services,
        monkeypatch: pytest.MonkeyPatch,
        uncontended: bool,
        idle_duty: float,
        rest: float,
    ) -> None:
        # After a batch that gave way to writes, the run rests by its duty, counting the time
        # the store says the batch held the writer (``held``), not the call's: at duty 0.25 a
        # batch held for 0.2 s is followed by 0.6 s, however long it waited behind ingests.
        # After a batch that no write waited for, by ``idle_duty`` (at 1, only ``pause``).
        _seed(services, settings={"retention_days": 80})
        store = services.store
        real = store.prune

        def prune(tenant_id: str, cutoff: str, limit: int, pruned_at: str) -> PruneBatch:
            batch = real(tenant_id, cutoff, limit, pruned_at)
            return replace(batch, held=0.2, uncontended=uncontended)

        monkeypatch.setattr(store, "prune", prune)
        retention = RetentionService(
            store, batch_size=10, pause=0.001, duty=0.25, idle_duty=idle_duty
        )
        rests: list[float] = []
        monkeypatch.setattr(retention._stopping, "wait", lambda seconds: rests.append(seconds))
        assert retention.prune_tenant("acme").count == 21
        assert rests == [pytest.approx(rest), pytest.approx(rest)]

    @pytest.mark.parametrize("name", ["duty", "idle_duty"])
    @pytest.mark.parametrize("value", [0.0, 1.5])
    def test_refuses_a_duty_out_of_range(self, services: Services, name: str, value: float) -> None:
        with pytest.raises(ValueError, match=name):
            RetentionService(services.store, **{name: value})

    @pytest.mark.parametrize(
        ("given", "idle_duty"),
        [
            pytest.param({}, SQLITE_IDLE_DUTY, id="sqlite-default"),
            pytest.param({"prune_idle_duty": 0.3}, 0.3, id="set"),
            pytest.param({"prune_duty": 0.2}, 0.2, id="the-duty-set"),
        ],
    )
    def test_the_server_takes_its_idle_duty_from_the_settings(
        self, tmp_path: Any, given: dict[str, float], idle_duty: float
    ) -> None:
        """By default SQLite's own (below its duty: a sparse ingest meets an uncontended batch
        about that share of the time), or the duty's when only the duty is set
        (docs/operations.md#retention)."""
        settings = Settings(
            database=f"sqlite:///{tmp_path / 'x.db'}",
            signing_key=tmp_path / "signing.key",
            prune_interval=0,
            **given,
        )
        services = Services.build(settings)
        try:
            assert services.retention.idle_duty == idle_duty
        finally:
            services.close()
        assert RetentionService(services.store, duty=0.3).idle_duty == 0.3

    def test_nothing_expired_writes_no_record(self, services: Services) -> None:
        _seed(services, settings={"retention_days": 365})
        run = RetentionService(services.store).prune_tenant("acme")
        assert run.count == 0
        assert _records(services) == []

    @pytest.mark.parametrize(
        ("policy", "message"),
        [
            pytest.param({}, "no retention policy", id="no-policy"),
            pytest.param({"retention_days": 1, "legal_hold": True}, "legal hold", id="hold"),
        ],
    )
    def test_refuses(self, services: Services, policy: dict[str, Any], message: str) -> None:
        _seed(services, settings=policy)
        with pytest.raises(ConflictError, match=message):
            RetentionService(services.store).prune_tenant("acme")
        assert services.events.count("acme", EventQuery()) == EVENTS

    def test_unknown_tenant(self, services: Services) -> None:
        with pytest.raises(NotFoundError):
            RetentionService(services.store).prune_tenant("nobody")

    def test_prune_all_skips_held_and_unset_tenants(self, services: Services) -> None:
        _seed(services, "acme", {"retention_days": 30})
        _seed(services, "globex", {"retention_days": 30, "legal_hold": True})
        _seed(services, "initech")
        runs = RetentionService(services.store).prune_all()
        assert [(r.tenant_id, r.count) for r in runs] == [("acme", EVENTS)]
        assert services.events.count("globex", EventQuery()) == EVENTS
        assert services.events.count("initech", EventQuery()) == EVENTS


class TestBackgroundTask:
    """The task prunes every tenant with a policy, on its interval, by itself."""

    def test_runs(self, services: Services) -> None:
        _seed(services, settings={"retention_days": 30})
        task = RetentionTask(RetentionService(services.store, pause=0, duty=1), 0.05)
        task.start()
        try:
            deadline = time.monotonic() + 10
            while services.events.count("acme", EventQuery()) != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            task.stop()
        assert services.events.count("acme", EventQuery()) == 1  # the prune record alone
        assert task.passes >= 1
        assert len(_records(services)) == 1

    def test_built_from_settings(self, settings: Settings) -> None:
        off = Services.build(settings.model_copy(update={"prune_interval": 0}))
        try:
            assert off.retention_task is None
        finally:
            off.close()
        on = Services.build(settings.model_copy(update={"prune_batch_size": 9}))
        try:
            assert on.retention_task is not None
            assert on.retention.batch_size == 9
        finally:
            on.close()


class TestAuditOfPruned:
    """``verify database``: a pruned position is leaf-only; content left behind a tombstone,
    or a tombstone without its leaf, is a finding."""

    @staticmethod
    def _pruned(services: Services) -> None:
        _seed(services, settings={"retention_days": 80})
        RetentionService(services.store, pause=0, duty=1).prune_tenant("acme")
        services.log.sign_pending()

    @staticmethod
    def _audit(services: Services) -> list[tuple[str, int | None]]:
        verifier = services.log.signer.verifier()
        report = audit_tenant(services.store, "acme", verifier, "test.trailkeep/acme")
        return [(p.kind, p.seq) for p in report.problems]

    def test_clean(self, services: Services) -> None:
        self._pruned(services)
        assert self._audit(services) == []

    def test_content_behind_a_tombstone(self, services: Services, settings: Settings) -> None:
        self._pruned(services)
        conn = sqlite3.connect(settings.database.removeprefix("sqlite:///"))
        with conn:
            conn.execute(
                "INSERT INTO pruned_events SELECT tenant_id, seq, id, 'x' FROM events"
                " WHERE seq = 25"
            )
        conn.close()
        assert self._audit(services) == [("pruned", 25)]

    def test_a_tombstone_without_its_leaf(self, services: Services, settings: Settings) -> None:
        self._pruned(services)
        conn = sqlite3.connect(settings.database.removeprefix("sqlite:///"))
        with conn:
            conn.execute("DELETE FROM tree_nodes WHERE level = 0 AND idx = 3")
        conn.close()
        kinds = self._audit(services)
        assert ("missing", 3) in kinds

    def test_a_deleted_tombstone_is_missing(self, services: Services, settings: Settings) -> None:
        self._pruned(services)
        conn = sqlite3.connect(settings.database.removeprefix("sqlite:///"))
        with conn:
            conn.execute("DELETE FROM pruned_events WHERE seq = 4")
        conn.close()
        assert self._audit(services) == [("missing", 4)]

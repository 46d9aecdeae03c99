"""The auditor's checks on PostgreSQL (PostgreSQL only: ``tests/service/test_audit.py`` tampers
with SQLite files): a clean log verifies, and rows altered behind the service's back are named."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import psycopg
import pytest

from trailkeep.api.services import Services
from trailkeep.client.verify import verify_checkpoints, verify_dump
from trailkeep.service.audit import audit_tenant
from trailkeep.service.dump import dump_lines
from trailkeep.settings import Settings

pytestmark = pytest.mark.postgres

N = 40
Tamper = Callable[[psycopg.Connection[tuple[object, ...]]], object]


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def seeded(services: Services) -> Services:
    services.tenants.create_tenant("acme")
    for chunk in range(4):
        events = [
            services.events.prepare({"action": f"a.{chunk}.{i}", "actor": {"id": f"u{i}"}})
            for i in range(N // 4)
        ]
        services.store.append("acme", events).result()
        services.log.sign_pending()
    return services


def audit(services: Services) -> list[tuple[str, int | None]]:
    verifier = services.log.signer.verifier()
    report = audit_tenant(services.store, "acme", verifier, "test.trailkeep/acme")
    return [(p.kind, p.seq) for p in report.problems]


class TestAuditOnPostgres:
    """``audit_tenant`` passes a clean PostgreSQL log and finds each kind of tampering."""

    def test_clean(self, seeded: Services) -> None:
        assert audit(seeded) == []
        checkpoints = seeded.store.list_checkpoints("acme")
        assert [c.size for c in checkpoints] == [10, 20, 30, 40]
        key = seeded.log.signer.verifier()
        for old, new in itertools.pairwise(checkpoints):
            proof = seeded.log.consistency_proof("acme", old.size, new.size)
            verify_checkpoints(old.note, new.note, proof, key)
        report = verify_dump(dump_lines(seeded.store, "acme"), key)
        assert report.events == N

    @pytest.mark.parametrize(
        ("tamper", "kind", "seq"),
        [
            pytest.param(
                lambda c: c.execute(
                    "UPDATE events SET body = convert_to(replace(convert_from(body, 'UTF8'),"
                    " '\"u7\"', '\"mallory\"'), 'UTF8') WHERE seq = 7"
                ),
                "altered",
                7,
                id="change-field",
            ),
            pytest.param(
                lambda c: c.execute("DELETE FROM events WHERE seq = 7"), "missing", 7, id="delete"
            ),
            pytest.param(
                lambda c: c.execute(
                    "UPDATE tree_nodes SET hash = '\\x00'::bytea || substr(hash, 2)"
                    " WHERE level = 2 AND idx = 1"
                ),
                "tree-node",
                None,
                id="change-tree-node",
            ),
            pytest.param(
                lambda c: c.execute(
                    "UPDATE checkpoints SET note = replace(note, 'test', 'evil') WHERE size = 20"
                ),
                "checkpoint",
                None,
                id="replace-checkpoint",
            ),
        ],
    )
    def test_tampering_is_found(
        self, seeded: Services, settings: Settings, tamper: Tamper, kind: str, seq: int | None
    ) -> None:
        with psycopg.connect(settings.database) as conn:
            tamper(conn)
        problems = audit(seeded)
        assert any(k == kind and (seq is None or s == seq) for k, s in problems), problems


class TestTextAsPostgresStoresIt:
    """PostgreSQL text cannot hold NUL: the writer stores U+FFFD in the query columns and the
    full-text text, and the auditor compares them as stored (PostgreSQL only)."""

    @pytest.fixture
    def with_nul(self, services: Services) -> Services:
        services.tenants.create_tenant("acme")
        event = services.events.prepare(
            {"action": "a\x00b", "actor": {"id": "u\x00"}, "message": "hi\x00there"}
        )
        services.store.append("acme", [event]).result()
        services.log.sign_pending()
        return services

    def test_clean(self, with_nul: Services) -> None:
        assert audit(with_nul) == []

    def test_changed_column_is_still_found(self, with_nul: Services, settings: Settings) -> None:
        with psycopg.connect(settings.database) as conn:
            conn.execute("UPDATE events SET actor_id = 'mallory' WHERE seq = 0")
        assert audit(with_nul) == [("derived", 0)]

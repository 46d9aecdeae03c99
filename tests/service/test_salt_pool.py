"""Batched ingest draws one request's salts from a shared pool: the same contract as
``commit_fields`` (DESIGN §3), every salt fresh, and stored events verify against their leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from trailkeep.api.services import Services
from trailkeep.errors import ValidationFailedError
from trailkeep.model.commitments import (
    SALT_SIZE,
    commit_all,
    commit_fields,
    field_paths,
    leaf_hash,
    leaf_input,
    leaf_prefix,
)
from trailkeep.model.evidence import event_leaf_hash
from trailkeep.service.events import Limits, SaltPool, prepare_event

VALUES: dict[str, Any] = {
    "timestamp": "2026-01-02T03:04:05.678Z",
    "action": "document.read",
    "outcome": "success",
    "actor.id": "user-1",
    "actor.email": "user1@example.com",
    "metadata.duration_ms": 1234,
    "metadata.ratio": 0.5,
    "metadata.tags": ["a", "b"],
    "metadata.edge": -(2**53 - 1),
    "message": "héllo ✓",
}


def test_commit_follows_the_commit_fields_contract() -> None:
    salts, commitments = SaltPool(1).commit(VALUES)
    expected_salts, _ = commit_fields(VALUES)
    assert list(salts) == list(expected_salts) == sorted(VALUES)
    assert list(commitments) == sorted(VALUES)
    assert all(len(s) == SALT_SIZE for s in salts.values())
    # commit_fields is new_salts of the sorted paths, then commit_all: with these salts, the
    # commitments are exactly commit_all's.
    assert commitments == commit_all(VALUES, salts)


def test_no_salt_is_handed_out_twice_across_refills() -> None:
    pool = SaltPool(2)  # a small first draw: the pool refills many times
    seen: set[bytes] = set()
    for i in range(200):
        salts, _ = pool.commit({**VALUES, f"metadata.k{i}": i})
        seen.update(salts.values())
        assert len(seen) == (i + 1) * (len(VALUES) + 1)


@pytest.mark.parametrize("bad", ["\ud800", 2**60, float("nan")])
def test_a_value_without_canonical_form_names_its_path(bad: Any) -> None:
    values = {"action": "x", "metadata.bad": bad}
    with pytest.raises(ValidationFailedError) as pooled:
        SaltPool(1).commit(values)
    with pytest.raises(ValidationFailedError) as drawn:
        commit_fields(values)
    assert pooled.value.message == drawn.value.message
    assert pooled.value.message.startswith("metadata.bad:")


def test_pooled_events_get_the_same_leaf_layout() -> None:
    pool = SaltPool(3)
    content = {"action": "login", "actor": {"id": "u1", "email": "u1@example.com"}, "n": 7}
    events = [prepare_event(dict(content), Limits(), salt_pool=pool) for _ in range(3)]
    assert len({e.id for e in events}) == 3
    packed = [b"".join(e.salts.values()) for e in events]
    assert len(set(packed)) == 3
    for event in events:
        assert list(event.salts) == sorted(field_paths(event.content))
        assert event.commitments == commit_all(field_paths(event.content), event.salts)
        assert event.leaf_prefix == leaf_prefix(event.id, event.received_at, event.commitments)


def test_a_batch_ingested_with_a_pool_verifies(services: Services) -> None:
    services.tenants.create_tenant("acme")
    contents = [
        {"action": f"a.{i}", "actor": {"id": f"u{i}"}, "metadata": {"i": i, "f": i / 3}}
        for i in range(50)
    ]
    appended = asyncio.run(services.events.ingest("acme", contents, batch=True))
    assert [a.event.seq for a in appended] == list(range(50))
    assert len({a.event.id for a in appended}) == 50
    salts_seen: set[bytes] = set()
    for a in appended:
        evidence = services.store.get_evidence("acme", a.event.id)
        assert evidence is not None
        salts_seen.update(evidence.salts.values())
        wire = evidence.event.to_wire()
        assert event_leaf_hash(wire, evidence.salts, {}) == a.event.leaf_hash
        values = field_paths(evidence.event.content)
        commitments = commit_all(values, evidence.salts)
        assert a.event.leaf_hash == leaf_hash(
            leaf_input("acme", a.event.seq, a.event.id, a.event.received_at, commitments)
        )
    assert len(salts_seen) == sum(len(field_paths(a.event.content)) for a in appended)

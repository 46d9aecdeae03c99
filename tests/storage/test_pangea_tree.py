"""Pangea's tree, kept by every backend beside the RFC 9162 tree, and its migration."""

from __future__ import annotations

from typing import Any

import pytest

from tests.storage.test_store import make_tenant, new_event
from trailkeep.merkle import PANGEA_LEGACY, CompactRange
from trailkeep.model.pangea import pangea_leaf, pruned_leaf
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.pangea_tree import PangeaProofs, TreeSizeError
from trailkeep.service.stores import open_store
from trailkeep.storage.base import Store

sdk = pytest.importorskip("pangea.services.audit.util", reason="pangea-sdk (compat extra)")


def _append(store: Store, count: int, tenant: str = "acme") -> list[Any]:
    events = [new_event(message=f"m{i}", actor={"id": f"u{i % 3}"}) for i in range(count)]
    return [a.event for a in store.append(tenant, events).result()]


def _root(leaves: list[bytes]) -> bytes:
    compact = CompactRange(PANGEA_LEGACY)
    compact.extend(leaves)
    return compact.root()


class TestWriters:
    """Every append extends Pangea's tree in step with the log, leaf = the envelope hash."""

    def test_leaves_are_envelope_hashes(self, store: Store) -> None:
        make_tenant(store)
        stored = _append(store, 5) + _append(store, 4)
        proofs = PangeaProofs(store, "acme")
        assert proofs.leaves(0, 9) == [pangea_leaf(e.content, e.received_at) for e in stored]

    def test_roots_at_every_size(self, store: Store) -> None:
        make_tenant(store)
        stored = []
        for count in (1, 2, 5, 9):
            stored += _append(store, count)
        leaves = [pangea_leaf(e.content, e.received_at) for e in stored]
        proofs = PangeaProofs(store, "acme")
        head = store.tree_head("acme")
        assert head.size == len(stored)
        assert head.pangea_root() == _root(leaves)
        for size in range(1, len(stored) + 1):
            assert proofs.root(size) == _root(leaves[:size])

    def test_proofs_pass_the_sdk(self, store: Store) -> None:
        make_tenant(store)
        _append(store, 7)
        _append(store, 6)
        proofs = PangeaProofs(store, "acme")
        leaves = proofs.leaves(0, 13)
        for size in range(1, 14):
            root = proofs.root(size)
            for index, proof in proofs.memberships(range(size), size).items():
                decoded = sdk.decode_membership_proof(proof)
                assert sdk.verify_membership_proof(leaves[index], root, decoded)
            for older in range(1, size):
                decoded = sdk.decode_consistency_proof(proofs.consistency(older, size))
                assert sdk.verify_consistency_proof(root, proofs.root(older), decoded)

    @pytest.mark.parametrize("size", [pytest.param(0, id="zero"), pytest.param(4, id="past-end")])
    def test_missing_size(self, store: Store, size: int) -> None:
        make_tenant(store)
        _append(store, 3)
        with pytest.raises(TreeSizeError, match="sizes 1 to 3"):
            PangeaProofs(store, "acme").root(size)

    def test_tenants_have_trees_of_their_own(self, store: Store) -> None:
        make_tenant(store)
        make_tenant(store, "globex")
        _append(store, 3)
        theirs = _append(store, 2, "globex")
        assert PangeaProofs(store, "globex").leaves(0, 5) == [
            pangea_leaf(e.content, e.received_at) for e in theirs
        ]


_UNDO = {
    "sqlite": (
        11,
        [
            "DROP TABLE pangea_tree_nodes",
            "ALTER TABLE tree_heads DROP COLUMN pangea_frontier",
            "DELETE FROM schema_migrations WHERE version = 11",
        ],
    ),
    "postgres": (
        6,
        [
            "DROP TABLE pangea_tree_nodes",
            "ALTER TABLE tree_heads DROP COLUMN pangea_frontier",
            "DELETE FROM schema_migrations WHERE version = 6",
        ],
    ),
}


def _undo(url: str) -> None:
    if url.startswith("sqlite:"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            for statement in _UNDO["sqlite"][1]:
                conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg:
        for statement in _UNDO["postgres"][1]:
            pg.execute(statement.encode())


class TestMigration:
    """A database from before Pangea's tree gets it, built from its events and tombstones."""

    def test_backfill_builds_the_same_tree(self, store_url: str) -> None:
        store = open_store(store_url, sqlite_synchronous="NORMAL")
        try:
            make_tenant(store)
            make_tenant(store, "globex")
            _append(store, 6)
            _append(store, 3, "globex")
            _append(store, 5)
            before = {t: store.tree_head(t) for t in ("acme", "globex")}
        finally:
            store.close()
        _undo(store_url)
        store = open_store(store_url, sqlite_synchronous="NORMAL")
        try:
            for tenant, head in before.items():
                again = store.tree_head(tenant)
                assert again.pangea == head.pangea
                assert again.pangea_root() == head.pangea_root()
                assert PangeaProofs(store, tenant).root(head.size) == head.pangea_root()
            _append(store, 2)  # the writer resumes from the backfilled frontier
            stored = store.select("acme", _all())
            leaves = [pangea_leaf(e.content, e.received_at) for e in stored]
            assert store.tree_head("acme").pangea_root() == _root(leaves)
        finally:
            store.close()

    def test_pruned_positions_get_a_tombstone_leaf(self, store_url: str) -> None:
        store = open_store(store_url, sqlite_synchronous="NORMAL")
        try:
            make_tenant(store)
            stored = _append(store, 4)
            cutoff = "9999-01-01T00:00:00.000000Z"
            store.prune("acme", cutoff, 2, "2026-02-01T00:00:00.000000Z")
        finally:
            store.close()
        _undo(store_url)
        store = open_store(store_url, sqlite_synchronous="NORMAL")
        try:
            pruned = {p.seq for p in store.scan_pruned("acme", 0, 4)}
            assert len(pruned) == 2
            want = [
                pruned_leaf(e.id) if e.seq in pruned else pangea_leaf(e.content, e.received_at)
                for e in stored
            ]
            assert PangeaProofs(store, "acme").leaves(0, 4) == want
        finally:
            store.close()


def _all() -> EventQuery:
    return EventQuery(limit=1000, by_seq=True, sort=Sort.ASC)


class TestAudit:
    """``verify database`` checks Pangea's tree: a clean log passes, an altered leaf is found."""

    def test_clean_and_altered(self, store_url: str, tmp_path: Any) -> None:
        from trailkeep.merkle import Signer
        from trailkeep.service.audit import audit_tenant

        store = open_store(store_url, sqlite_synchronous="NORMAL")
        try:
            make_tenant(store)
            stored = _append(store, 9)
            verifier = Signer.generate("k").verifier()
            clean = audit_tenant(store, "acme", verifier, "o/acme", max_gap=0)
            assert not [p for p in clean.problems if p.kind.startswith("pangea")]
            _run_sql(
                store_url, "UPDATE pangea_tree_nodes SET hash = {} WHERE level = 0 AND idx = 4"
            )
            for deep in (True, False):
                found = audit_tenant(store, "acme", verifier, "o/acme", max_gap=0, deep=deep)
                kinds = [
                    (p.kind, p.seq, p.event_id)
                    for p in found.problems
                    if p.kind.startswith("pangea")
                ]
                # --deep names the event; by default the head's root alone fails
                if deep:
                    assert kinds[0] == ("pangea-leaf", 4, stored[4].id)
                assert ("pangea-head", None, None) in kinds
        finally:
            store.close()


def _run_sql(url: str, statement: str) -> None:
    if url.startswith("sqlite:"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            conn.execute(statement.format("zeroblob(32)"))
        conn.close()
        return
    import psycopg

    with psycopg.connect(url) as pg:
        pg.execute(statement.format("'\\x" + "00" * 32 + "'::bytea").encode())

"""The storage contract: every backend behaves the same through ``Store``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from tests.storage.queries import event_query
from trailkeep.errors import ConflictError, NotFoundError
from trailkeep.model.event import NewEvent
from trailkeep.model.tenant import ApiKey, Role, Tenant
from trailkeep.query.filters import EventQuery, Sort
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.stores import open_store
from trailkeep.storage.base import Store


def new_event(**content: Any) -> NewEvent:
    content.setdefault("action", "test.action")
    return prepare_event(content, Limits())


def make_tenant(store: Store, name: str = "acme") -> str:
    store.create_tenant(Tenant(name, "2026-01-01T00:00:00.000000Z"))
    return name


class TestMigrations:
    """Migrations are recorded in the database and run once."""

    def test_recorded_and_idempotent(self, store: Store, store_url: str) -> None:
        again = open_store(store_url)
        try:
            assert again.migrate() == []
        finally:
            again.close()


class TestTenantsAndKeys:
    """Tenants and keys are stored, listed and protected against duplicates."""

    def test_tenant_round_trip(self, store: Store) -> None:
        make_tenant(store)
        assert store.get_tenant("acme") == Tenant("acme", "2026-01-01T00:00:00.000000Z", {})
        assert [t.id for t in store.list_tenants()] == ["acme"]
        with pytest.raises(ConflictError, match="acme"):
            make_tenant(store)
        updated = store.update_tenant_settings("acme", {"retention_days": 30})
        assert updated.settings == {"retention_days": 30}
        with pytest.raises(NotFoundError):
            store.update_tenant_settings("nope", {})

    def test_keys(self, store: Store) -> None:
        make_tenant(store)
        key = ApiKey("tkc_1", "hash", "acme", Role.READER, "2026-01-01T00:00:00.000000Z", "ci")
        store.create_key(key)
        assert store.get_key("tkc_1") == key
        assert store.list_keys("acme") == [key]
        assert store.list_keys(None) == []
        store.revoke_key("tkc_1", "2026-01-02T00:00:00.000000Z")
        revoked = store.get_key("tkc_1")
        assert revoked is not None
        assert revoked.revoked_at == "2026-01-02T00:00:00.000000Z"
        with pytest.raises(NotFoundError):
            store.revoke_key("tkc_1", "2026-01-03T00:00:00.000000Z")

    def test_key_conflicts(self, store: Store) -> None:
        """A taken client id, or a tenant that does not exist, is a conflict (409)."""
        make_tenant(store)
        key = ApiKey("tkc_1", "hash", "acme", Role.WRITER, "2026-01-01T00:00:00.000000Z")
        store.create_key(key)
        with pytest.raises(ConflictError):
            store.create_key(key)
        with pytest.raises(ConflictError):
            store.create_key(ApiKey("tkc_2", "hash", "ghost", Role.WRITER, key.created_at))


class TestAppend:
    """Appends sequence events gap-free per tenant, durably, all or nothing."""

    def test_sequences_per_tenant(self, store: Store) -> None:
        make_tenant(store, "a")
        make_tenant(store, "b")
        a = store.append("a", [new_event(), new_event()]).result()
        b = store.append("b", [new_event()]).result()
        a2 = store.append("a", [new_event()]).result()
        assert [x.event.seq for x in a + a2] == [0, 1, 2]
        assert [x.event.seq for x in b] == [0]
        assert store.log_size("a") == 3
        assert store.log_size("b") == 1

    def test_concurrent_appends_stay_gap_free(self, store: Store) -> None:
        make_tenant(store)
        seqs: list[int] = []
        lock = threading.Lock()

        def writer() -> None:
            for _ in range(20):
                got = store.append("acme", [new_event(), new_event()]).result()
                with lock:
                    seqs.extend(x.event.seq for x in got)

        threads = [threading.Thread(target=writer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(seqs) == list(range(320))

    def test_unknown_tenant_fails_alone(self, store: Store) -> None:
        make_tenant(store)
        bad = store.append("ghost", [new_event()])
        good = store.append("acme", [new_event()])
        with pytest.raises(NotFoundError):
            bad.result()
        assert good.result()[0].event.seq == 0

    def test_idempotency(self, store: Store) -> None:
        make_tenant(store)
        first = store.append("acme", [new_event(idempotency_key="k")]).result()[0]
        again = store.append("acme", [new_event(idempotency_key="k"), new_event()]).result()
        assert again[0].replayed
        assert again[0].event == first.event
        assert again[1].event.seq == 1

    def test_durable_when_the_process_is_killed(self, store_url: str) -> None:
        """An acknowledged append survives SIGKILL of the process that made it."""
        script = (
            "import os, signal, sys\n"
            "from trailkeep.service.stores import open_store\n"
            "from trailkeep.model.tenant import Tenant\n"
            "from tests.storage.test_store import new_event\n"
            "s = open_store(sys.argv[1])\n"
            "s.create_tenant(Tenant('acme', '2026-01-01T00:00:00.000000Z'))\n"
            "got = s.append('acme', [new_event() for _ in range(50)]).result()\n"
            "ids = [a.event.id for a in got]\n"
            "print(','.join(ids), flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script, store_url],
            capture_output=True,
            text=True,
            cwd=os.getcwd(),
            check=False,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        acknowledged = proc.stdout.strip().split(",")
        reopened = open_store(store_url)
        try:
            stored = reopened.list_events("acme", EventQuery(sort=Sort.ASC, limit=100)).events
        finally:
            reopened.close()
        assert [e.id for e in stored] == acknowledged


class TestReads:
    """Events read back exactly as written, scoped to their tenant."""

    def test_get_and_list(self, store: Store) -> None:
        make_tenant(store, "a")
        make_tenant(store, "b")
        written = store.append(
            "a", [new_event(action=f"x.{i}", timestamp=f"2026-01-0{i + 1}") for i in range(3)]
        ).result()
        first = written[0].event
        assert store.get_event("a", first.id) == first
        assert store.get_event("b", first.id) is None
        page = store.list_events("a", event_query({"action": ["x.1"]}))
        assert [e.content["action"] for e in page.events] == ["x.1"]
        assert page.log_size == 3
        assert store.list_events("b", EventQuery()).events == []

    def test_keyset_after(self, store: Store) -> None:
        make_tenant(store)
        written = [
            a.event
            for a in store.append(
                "acme", [new_event(timestamp="2026-01-01T00:00:00Z") for _ in range(5)]
            ).result()
        ]
        ordered = sorted(written, key=lambda e: e.id, reverse=True)
        after = (ordered[1].content["timestamp"], ordered[1].id)
        page = store.list_events("acme", EventQuery(after=after, limit=10))
        assert [e.id for e in page.events] == [e.id for e in ordered[2:]]

    def test_log_order_after_seq(self, store: Store) -> None:
        """Streams read in log order from a seq, whatever the events' timestamps."""
        make_tenant(store)
        stamps = ["2026-01-03", "2026-01-01", "2026-01-02", "2026-01-01"]
        store.append("acme", [new_event(timestamp=t) for t in stamps]).result()
        page = store.list_events("acme", EventQuery(after_seq=0, by_seq=True, sort=Sort.ASC))
        assert [e.seq for e in page.events] == [1, 2, 3]
        page = store.list_events("acme", EventQuery(by_seq=True, sort=Sort.DESC, limit=2))
        assert [e.seq for e in page.events] == [3, 2]


def test_a_write_its_caller_gave_up_on_leaves_the_writer_running(store: Store) -> None:
    """An append whose future is cancelled while it waits in the queue (an asyncio caller
    cancelled, e.g. ``log_async`` answered before its write) is still written, and the
    writer thread goes on answering the appends after it."""
    make_tenant(store)
    ahead = store.append("acme", [new_event(metadata={"i": i}) for i in range(1000)])
    given_up = store.append("acme", [new_event(action="given.up")])
    assert given_up.cancel(), "the writer answered before the test could cancel"
    assert len(ahead.result(timeout=60)) == 1000
    after = store.append("acme", [new_event(action="after")]).result(timeout=60)
    assert after[0].event.seq == 1001  # the cancelled one was written at seq 1000
    assert store.log_size("acme") == 1002

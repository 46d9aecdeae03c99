"""PostgreSQL-only behaviour: what exists only because several processes share one database
(row-locked sequencing, advisory-locked migrations), driver errors at the boundary, and the
text PostgreSQL cannot store."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import psycopg
import pytest

from tests.pg import PostgresServer
from tests.process import free_port
from tests.storage.queries import event_query
from tests.storage.test_store import make_tenant, new_event
from trailkeep.errors import ConflictError, NotFoundError, UnavailableError
from trailkeep.merkle import Signer
from trailkeep.service.audit import audit_tenant
from trailkeep.service.log import LogService
from trailkeep.service.stores import open_store
from trailkeep.storage._postgres_writer import COPY_AT_LEAST
from trailkeep.storage.base import Appended, Evidence, Store
from trailkeep.storage.postgres_schema import MIGRATIONS

pytestmark = pytest.mark.postgres

Submit = Callable[[], Future[list[Appended]]]


@pytest.fixture
def store_url(pg_url: str) -> str:
    """This module is PostgreSQL only: the contract's ``store`` fixture on PostgreSQL alone."""
    return pg_url


@pytest.fixture
def stores(pg_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database: what two server processes see."""
    first, second = open_store(pg_url), open_store(pg_url)
    yield first, second
    first.close()
    second.close()


def audited(store: Store, tenant: str, signer: Signer) -> None:
    LogService(store, signer, "test").sign_pending()
    report = audit_tenant(store, tenant, signer.verifier(), f"test/{tenant}")
    assert report.ok, report.problems


class TestSharedDatabase:
    """Two stores on one database sequence each tenant gap-free and never fork its tree."""

    def test_concurrent_appends_through_two_stores(self, stores: tuple[Store, Store]) -> None:
        make_tenant(stores[0], "a")
        make_tenant(stores[0], "b")
        acked: dict[str, list[int]] = {"a": [], "b": []}
        lock = threading.Lock()

        def writer(store: Store, tenant: str, size: int) -> None:
            for _ in range(15):
                got = store.append(tenant, [new_event() for _ in range(size)]).result()
                with lock:
                    acked[tenant].extend(x.event.seq for x in got)

        threads = [
            threading.Thread(target=writer, args=(store, tenant, size))
            for store in stores
            for tenant in ("a", "b")
            for size in (1, 7)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        signer = Signer.generate("test")
        for tenant in ("a", "b"):
            assert sorted(acked[tenant]) == list(range(240))
            assert stores[1].tree_head(tenant).size == 240
            audited(stores[0], tenant, signer)

    def test_idempotency_key_across_stores(self, stores: tuple[Store, Store]) -> None:
        make_tenant(stores[0])
        barrier = threading.Barrier(2)
        got: list[Appended] = []

        def retry(store: Store) -> None:
            barrier.wait()
            got.extend(store.append("acme", [new_event(idempotency_key="once")]).result())

        threads = [threading.Thread(target=retry, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got[0].event == got[1].event
        assert sorted(a.replayed for a in got) == [False, True]
        assert stores[0].log_size("acme") == 1

    def test_append_waits_for_the_tenant_lock(self, pg_url: str, store: Store) -> None:
        """The head row lock, not process memory, decides who sequences next."""
        make_tenant(store)
        store.append("acme", [new_event()]).result()
        with psycopg.connect(pg_url) as other:
            other.execute("SELECT size FROM tree_heads WHERE tenant_id = 'acme' FOR UPDATE")
            pending = store.append("acme", [new_event()])
            with pytest.raises(TimeoutError):
                pending.result(timeout=0.5)
        assert pending.result(timeout=10)[0].event.seq == 1


class TestGroupIsolation:
    """Within one group commit, a job that fails is rolled back alone."""

    def _grouped(
        self, pg_url: str, store: Store, submit: list[Submit]
    ) -> list[Future[list[Appended]]]:
        """Submit jobs while the tenant is locked elsewhere, so they commit as one group."""
        with psycopg.connect(pg_url) as other:
            other.execute("SELECT 1 FROM tree_heads FOR UPDATE")
            blocker = store.append("acme", [new_event()])  # the writer waits on the lock...
            futures = [call() for call in submit]
        blocker.result(timeout=10)  # ...and takes the rest as one group once it is free
        return futures

    @pytest.mark.parametrize(
        "size",
        [
            pytest.param(1, id="small-group-inserted-with-commit"),
            pytest.param(COPY_AT_LEAST, id="large-group-copied"),
        ],
    )
    def test_duplicate_event_id(self, pg_url: str, store: Store, size: int) -> None:
        make_tenant(store)
        first = store.append("acme", [new_event()]).result()[0].event
        clash = dataclasses.replace(new_event(), id=first.id)
        good, bad, after = self._grouped(
            pg_url,
            store,
            [
                lambda: store.append("acme", [new_event() for _ in range(size)]),
                lambda: store.append("acme", [new_event(), clash]),
                lambda: store.append("acme", [new_event()]),
            ],
        )
        with pytest.raises(ConflictError):
            bad.result(timeout=10)
        seqs = [a.event.seq for f in (good, after) for a in f.result(timeout=10)]
        assert seqs == list(range(2, size + 3))
        assert store.log_size("acme") == size + 3
        audited(store, "acme", Signer.generate("test"))

    def test_redaction_of_missing_event(self, pg_url: str, store: Store) -> None:
        make_tenant(store)
        stored = store.append("acme", [new_event(actor={"id": "u1"})]).result()[0].event
        erased = Evidence(stored, {}, {})
        good, bad = self._grouped(
            pg_url,
            store,
            [
                lambda: store.append("acme", [new_event()]),
                lambda: store.redact("acme", "evt_missing", erased, new_event(action="redact")),
            ],
        )
        with pytest.raises(NotFoundError):
            bad.result(timeout=10)
        assert [a.event.seq for a in good.result(timeout=10)] == [2]
        assert store.log_size("acme") == 3


class TestMigrations:
    """Processes starting at once against an empty database apply each migration once."""

    def test_concurrent_start(self, pg_url: str) -> None:
        applied: list[list[str]] = []
        errors: list[BaseException] = []

        def start() -> None:
            try:
                opened = open_store(pg_url)
            except BaseException as exc:
                errors.append(exc)
                return
            applied.append(opened.migrate())
            opened.close()

        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        with psycopg.connect(pg_url) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(versions) == [v for v, _, _ in MIGRATIONS]


class TestUnavailable:
    """A database that cannot be reached is UnavailableError (503), never a driver error."""

    def test_nothing_listening(self) -> None:
        with pytest.raises(UnavailableError, match="PostgreSQL is unavailable"):
            open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/x?connect_timeout=2")

    def test_no_such_database(self, pg_server: PostgresServer) -> None:
        with pytest.raises(UnavailableError, match="does not exist"):
            open_store(pg_server.url("no_such_database"))


class TestText:
    """NUL, which PostgreSQL text cannot hold, is kept exactly in the event; the indexed
    copies hold U+FFFD, and filters and idempotency keys are matched the same way."""

    def test_nul_round_trips(self, store: Store) -> None:
        make_tenant(store)
        nul = "a\x00b"
        event = new_event(action=nul, actor={"id": nul}, idempotency_key=nul)
        first = store.append("acme", [event]).result()[0].event
        assert first.content["action"] == nul
        stored = store.get_event("acme", first.id)
        assert stored is not None
        assert stored.content["actor"]["id"] == nul
        page = store.list_events("acme", event_query({"action": [nul]}))
        assert [e.id for e in page.events] == [first.id]
        again = store.append("acme", [new_event(idempotency_key=nul)]).result()[0]
        assert again.replayed
        assert again.event.id == first.id

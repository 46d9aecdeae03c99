"""Real ``trailkeep serve`` processes on PostgreSQL (PostgreSQL only: several processes on one
database, and the database going away under a running server)."""

from __future__ import annotations

import gzip
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg import PostgresServer
from tests.process import serving
from trailkeep.client.verify import verify_checkpoints
from trailkeep.model.tenant import Role
from trailkeep.service.audit import audit_tenant
from trailkeep.service.signing import load_existing_signer
from trailkeep.service.stores import open_store
from trailkeep.service.tenants import TenantService

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TENANTS = ("acme", "globex")
HAMMER_SECONDS = 2.0
#: Events each tenant's log must hold after the hammer for the test to mean anything.
HAMMER_MIN_EVENTS = 100
ENV = {"TRAILKEEP_CHECKPOINT_INTERVAL": "0.2", "TRAILKEEP_SERVER_NAME": "test.trailkeep"}


def provision(database: str, tenant: str) -> dict[str, str]:
    """A tenant and one key per role, made in-process (the CLI path is tested elsewhere)."""
    store = open_store(database)
    try:
        tenants = TenantService(store)
        tenants.create_tenant(tenant)
        return {r: tenants.create_key(tenant, Role(r)).token for r in ("writer", "reader")}
    finally:
        store.close()


@dataclass
class Acks:
    """What the servers acknowledged, per tenant: event id → seq."""

    seqs: dict[str, dict[str, int]] = field(default_factory=lambda: {t: {} for t in TENANTS})
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, tenant: str, response: httpx.Response) -> list[dict[str, Any]]:
        if response.status_code != 201:
            with self.lock:
                self.failures.append(f"{response.status_code} {response.text[:200]}")
            return []
        body = response.json()
        events: list[dict[str, Any]] = body.get("events", [body])
        with self.lock:
            for event in events:
                previous = self.seqs[tenant].setdefault(event["id"], event["seq"])
                assert previous == event["seq"], f"{event['id']} acknowledged at two seqs"
        return events


def hammer(urls: list[str], tokens: dict[str, dict[str, str]], acks: Acks) -> None:
    """Batched and single writes, and idempotent retries raced across both servers."""
    deadline = time.monotonic() + HAMMER_SECONDS
    counter = itertools.count()

    def more(tenant: str) -> bool:
        """Hammer for ``HAMMER_SECONDS``, and on a loaded machine until the tenant holds
        enough events to mean something (at most a minute more)."""
        now = time.monotonic()
        wanted = len(acks.seqs[tenant]) < 2 * HAMMER_MIN_EVENTS and now < deadline + 60
        return now < deadline or wanted

    def client(url: str, tenant: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {tokens[tenant]['writer']}"}
        return httpx.Client(base_url=url, headers=auth, timeout=30)

    def batches(url: str, tenant: str) -> None:
        with client(url, tenant) as http:
            while more(tenant):
                n = next(counter)
                events = [{"action": "batch", "metadata": {"n": n, "i": i}} for i in range(25)]
                events[0]["idempotency_key"] = f"batch-{n}"
                acks.record(tenant, http.post("/v1/events/batch", json={"events": events}))

    def singles(url: str, tenant: str) -> None:
        with client(url, tenant) as http:
            while more(tenant):
                body = {"action": "single", "metadata": {"n": next(counter)}}
                acks.record(tenant, http.post("/v1/events", json=body))

    def raced_retries(tenant: str) -> None:
        """The same idempotency key sent to both servers at once is stored once."""
        barrier = threading.Barrier(len(urls))
        answers: list[list[dict[str, Any]]] = [[] for _ in urls]

        def send(i: int, key: str) -> None:
            with client(urls[i], tenant) as http:
                barrier.wait()
                body = {"action": "retry", "idempotency_key": key}
                answers[i] = acks.record(tenant, http.post("/v1/events", json=body))

        for n in range(10):
            pair = [threading.Thread(target=send, args=(i, f"retry-{n}")) for i in range(2)]
            for t in pair:
                t.start()
            for t in pair:
                t.join()
            assert answers[0] == answers[1]

    workers: list[Callable[..., None]] = [batches, singles]
    threads = [
        threading.Thread(target=work, args=(url, tenant))
        for work in workers
        for url in urls
        for tenant in TENANTS
    ]
    threads += [threading.Thread(target=raced_retries, args=(t,)) for t in TENANTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_for_checkpoint(url: str, token: str, size: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    auth = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        note = httpx.get(f"{url}/v1/log/checkpoint", headers=auth, timeout=10).text
        if int(note.splitlines()[1]) >= size:
            return
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size {size} within {timeout}s")


@pytest.fixture
def database(pg_server: PostgresServer) -> str:
    return pg_server.create_database("procs")


class TestTwoServers:
    """Two server processes on one database and one signing key keep one log per tenant."""

    def test_hammered_from_both_sides(self, database: str, tmp_path: Path) -> None:
        tokens = {t: provision(database, t) for t in TENANTS}
        key_file = tmp_path / "signing.key"
        acks = Acks()
        with ExitStack() as stack:
            urls = [
                stack.enter_context(serving(database, key_file, tmp_path / f"s{i}.log", ENV))[0]
                for i in range(2)
            ]
            hammer(urls, tokens, acks)
            assert not acks.failures, acks.failures[:5]
            for i, tenant in enumerate(TENANTS):
                size = len(acks.seqs[tenant])
                wait_for_checkpoint(urls[i % 2], tokens[tenant]["reader"], size)
            consistency = self._consistency_checker(urls, tokens)
            self._check_log(database, key_file, acks, consistency)

    @staticmethod
    def _consistency_checker(
        urls: list[str], tokens: dict[str, dict[str, str]]
    ) -> Callable[[str, int, int], list[str]]:
        turn = itertools.cycle(urls)

        def proof(tenant: str, first: int, second: int) -> list[str]:
            auth = {"Authorization": f"Bearer {tokens[tenant]['reader']}"}
            params = {"from": first, "to": second}
            got = httpx.get(f"{next(turn)}/v1/log/proof/consistency", params=params, headers=auth)
            assert got.status_code == 200, got.text
            hashes: list[str] = got.json()["hashes"]
            return hashes

        return proof

    @staticmethod
    def _check_log(
        database: str,
        key_file: Path,
        acks: Acks,
        consistency: Callable[[str, int, int], list[str]],
    ) -> None:
        verifier = load_existing_signer(key_file).verifier()
        store = open_store(database)
        try:
            for tenant in TENANTS:
                size = store.log_size(tenant)
                assert size > HAMMER_MIN_EVENTS, "the hammer hardly wrote anything"
                stored = {e.event.id: e.event.seq for e in store.scan_evidence(tenant, 0, size)}
                assert sorted(stored.values()) == list(range(size)), "seqs are not 0..n-1"
                assert stored == acks.seqs[tenant], "acknowledged and stored events differ"
                report = audit_tenant(store, tenant, verifier, f"test.trailkeep/{tenant}")
                assert report.ok, report.problems[:5]
                checkpoints = store.list_checkpoints(tenant)
                assert report.checkpoints == len(checkpoints) > 2
                for old, new in itertools.pairwise(checkpoints):
                    hashes = consistency(tenant, old.size, new.size)
                    verify_checkpoints(old.note, new.note, hashes, verifier)
        finally:
            store.close()


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A cluster of this test's own, so stopping it disturbs no other test."""
    server = PostgresServer.start_new()
    yield server
    server.destroy()


class TestDatabaseRestart:
    """A running server answers 503 while PostgreSQL is down and recovers without a restart."""

    def test_outage_and_recovery(self, own_server: PostgresServer, tmp_path: Path) -> None:
        database = own_server.create_database()
        tokens = provision(database, "acme")
        writer = {"Authorization": f"Bearer {tokens['writer']}"}
        reader = {"Authorization": f"Bearer {tokens['reader']}"}
        with (
            serving(database, tmp_path / "signing.key", tmp_path / "s.log", ENV) as (url, proc),
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            before = http.post("/v1/events", json={"action": "before"}, headers=writer)
            assert before.status_code == 201
            own_server.stop("immediate")  # as abrupt as a crash
            for method, path, headers, body in [
                ("POST", "/v1/events", writer, {"action": "during"}),
                ("GET", "/v1/events", reader, None),
            ]:
                down = http.request(method, path, headers=headers, json=body)
                assert down.status_code == 503, down.text
                assert down.json()["error"]["code"] == "UNAVAILABLE"
                assert "message" in down.json()["error"]
            assert http.get("/readyz").status_code == 503
            own_server.start()
            after = self._until_accepted(http, writer)
            assert after["seq"] == 1  # the refused write left no trace
            listed = http.get("/v1/events", params={"sort": "asc"}, headers=reader).json()
            assert [e["action"] for e in listed["events"]] == ["before", "after"]
            assert http.get("/readyz").status_code == 200
            assert proc.poll() is None

    @staticmethod
    def _until_accepted(http: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            got = http.post(
                "/v1/events", json={"action": "after", "idempotency_key": "after"}, headers=headers
            )
            if got.status_code == 201:
                event: dict[str, Any] = got.json()
                return event
            assert got.status_code == 503, got.text
            assert time.monotonic() < deadline, "the server did not recover within 30 s"
            time.sleep(0.2)


class TestPangeaAcrossServers:
    """Pangea's search ids and export request ids are answered by every server process on the
    database, not only by the one that issued them (pangea-sdk, real processes)."""

    def test_results_and_exports_on_another_server(self, database: str, tmp_path: Path) -> None:
        pangea = pytest.importorskip("pangea")
        from pangea.exceptions import AcceptedRequestException, NotFound
        from pangea.services import Audit
        from pangea.services.audit.models import DownloadFormat

        store = open_store(database)
        try:
            tenants = TenantService(store)
            tenants.create_tenant("acme")
            token = tenants.create_key("acme", Role.ADMIN).token
        finally:
            store.close()
        key_file = tmp_path / "signing.key"
        with ExitStack() as stack:
            urls = [
                stack.enter_context(serving(database, key_file, tmp_path / f"s{i}.log", ENV))[0]
                for i in range(2)
            ]
            a, b = (
                Audit(token, config=pangea.PangeaConfig(base_url_template=f"{url}/pangea",
                                                        poll_result_timeout=5, request_retries=0))
                for url in urls
            )  # fmt: skip
            for i in range(30):
                a.log(message=f"m{i}", actor="bob" if i % 3 else "alice")
            found = a.search(query="actor:alice", limit=4, verify_events=True)
            assert found.result.count == 10
            page = b.results(found.result.id, limit=4, offset=8)
            assert [e.envelope.event["message"] for e in page.result.events] == ["m3", "m0"]
            got = b.download_results(result_id=found.result.id, format=DownloadFormat.JSON)
            assert len(json.loads(gzip.decompress(b.download_file(got.result.dest_url).file))
                       ["events"]) == 10  # fmt: skip

            exported = a.export(format=DownloadFormat.JSON, verbose=False)
            for _ in range(200):
                try:
                    done = b.poll_result(request_id=exported.request_id)
                    break
                except AcceptedRequestException:
                    time.sleep(0.05)
            else:
                raise AssertionError("the export never became ready on the other server")
            assert done.result.count == 30
            got = b.download_results(request_id=exported.request_id, format=DownloadFormat.JSON)
            document = json.loads(gzip.decompress(b.download_file(got.result.dest_url).file))
            assert [e["envelope"]["event"]["message"] for e in document["events"]] == [
                f"m{i}" for i in range(30)
            ]
            with pytest.raises(NotFound):
                b.results("pas_" + "0" * 32, limit=1, offset=0)

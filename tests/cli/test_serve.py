"""``trailkeep serve`` runs the whole service in a real process, as the README describes."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.process import running_server
from trailkeep.client.verify import verify_checkpoints, verify_event
from trailkeep.merkle import Signer, Verifier
from trailkeep.service.audit import audit_tenant
from trailkeep.service.log import LogService
from trailkeep.service.signer_state import SignerState
from trailkeep.service.stores import open_store


class TestServe:
    """A real server process ingests, answers queries, health and metrics."""

    def test_end_to_end(self, tmp_path: Path) -> None:
        with running_server(tmp_path) as server, httpx.Client(base_url=server.url) as http:
            one = http.post("/v1/events", json={"action": "login"}, headers=server.auth("writer"))
            assert one.status_code == 201, one.text
            batch = http.post(
                "/v1/events/batch",
                headers=server.auth("writer"),
                json={"events": [{"action": "a"}, {"action": "b"}]},
            )
            assert [e["seq"] for e in batch.json()["events"]] == [1, 2]
            listed = http.get("/v1/events", headers=server.auth("reader")).json()
            assert [e["action"] for e in listed["events"]] == ["b", "a", "login"]
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/readyz").status_code == 200
            metrics = http.get("/metrics").text
            assert "trailkeep_events_ingested_total 3.0" in metrics
            assert 'route="/v1/events/batch",status="201"' in metrics
            assert http.get("/openapi.json").json()["info"]["title"] == "trailkeep"
            assert http.get("/docs").status_code == 200
            key = http.get("/v1/log/key").text.strip()
            assert key in server.log_path.read_text()

    def test_checkpoints_signed_in_the_background(self, tmp_path: Path) -> None:
        env = {"TRAILKEEP_CHECKPOINT_INTERVAL": "0.2"}
        with running_server(tmp_path, env) as server, httpx.Client(base_url=server.url) as http:
            event = http.post("/v1/events", json={"action": "a"}, headers=server.auth("writer"))
            key = http.get("/v1/log/key").text
            deadline = time.monotonic() + 10
            while True:
                proof = http.get(
                    f"/v1/events/{event.json()['id']}/proof", headers=server.auth("reader")
                )
                if proof.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert proof.status_code == 200, proof.text
            assert verify_event(proof.json(), key).size >= 1


class TestWorkers:
    """Several worker processes on one SQLite file never fork a tenant's tree."""

    def test_two_workers_interleave_gap_free(self, tmp_path: Path) -> None:
        env = {"TRAILKEEP_WORKERS": "2", "TRAILKEEP_CHECKPOINT_INTERVAL": "0.1"}
        with running_server(tmp_path, env) as server:

            def writer(n: int) -> list[int]:
                with httpx.Client(base_url=server.url, headers=server.auth("writer")) as http:
                    seqs = []
                    for i in range(15):
                        body = {"events": [{"action": f"w{n}.{i}.{j}"} for j in range(5)]}
                        resp = http.post("/v1/events/batch", json=body)
                        assert resp.status_code == 201, resp.text
                        seqs += [e["seq"] for e in resp.json()["events"]]
                        single = http.post("/v1/events", json={"action": f"s{n}.{i}"})
                        seqs.append(single.json()["seq"])
                    return seqs

            with ThreadPoolExecutor(8) as pool:
                seqs = [s for chunk in pool.map(writer, range(8)) for s in chunk]
            assert sorted(seqs) == list(range(8 * 15 * 6))
            key = httpx.get(f"{server.url}/v1/log/key").text
            time.sleep(0.5)  # let both workers' checkpointers sign the final head
        store = open_store(server.database)
        try:
            report = audit_tenant(
                store, "acme", Verifier.parse(key.strip()), "trailkeep.local/acme"
            )
            checkpoints = store.list_checkpoints("acme")
        finally:
            store.close()
        assert report.ok, report.problems
        assert checkpoints[-1].size == len(seqs)
        store = open_store(server.database)
        try:
            unused = Signer.generate("unused")
            state = SignerState.beside(tmp_path / "unused.key", unused.verifier())
            proofs = LogService(store, unused, "unused", state=state)
            for old, new in itertools.pairwise(checkpoints):
                hashes = proofs.consistency_proof("acme", old.size, new.size)
                verify_checkpoints(old.note, new.note, hashes, key)
        finally:
            store.close()


class TestStartMessages:
    """`serve` names misspelt TRAILKEEP_* variables and says how to listen beyond loopback."""

    def test_warnings_and_host_hint(self, tmp_path: Path) -> None:
        env = {"TRAILKEEP_DATABSE": "sqlite:///elsewhere.db", "TRAILKEEP_WORKERS_LOG_LEVEL": "info"}
        with running_server(tmp_path, env) as server:
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            log = server.log_path.read_text()
        assert "TRAILKEEP_DATABSE is not a trailkeep setting" in log
        assert "did you mean TRAILKEEP_DATABASE?" in log
        assert "TRAILKEEP_WORKERS_LOG_LEVEL is deprecated: use TRAILKEEP_LOG_LEVEL" in log
        assert "--host 0.0.0.0" in log
        assert "TRAILKEEP_URL" not in log  # a variable the CLI reads is not unknown

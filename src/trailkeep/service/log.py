"""Each tenant's verifiable log: signed checkpoints, and inclusion and consistency proofs."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from trailkeep.errors import ConflictError, InvalidInputError, NotFoundError, TrailkeepError
from trailkeep.merkle import (
    RFC9162,
    Checkpoint,
    Nodes,
    Signer,
    consistency,
    inclusion,
    verify_consistency,
)
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.storage.base import Evidence, Store, StoredCheckpoint
from trailkeep.storage.tree import TreeHead

__all__ = ["Checkpointer", "EventProof", "LogService"]

log = logging.getLogger(__name__)

#: Most leaf hashes one ``/v1/log/leaves`` answer carries.
MAX_LEAVES = 1000


@dataclass(frozen=True, slots=True)
class EventProof:
    """An event, what recomputes its leaf, and its inclusion proof to a signed checkpoint."""

    evidence: Evidence
    checkpoint: StoredCheckpoint
    hashes: list[bytes]


class LogService:
    """Proofs and checkpoints over a store's per-tenant trees.

    Args:
        store: where the trees live.
        signer: the checkpoint signing key.
        server_name: the origin prefix; a tenant's log is ``<server_name>/<tenant>``.
    """

    def __init__(self, store: Store, signer: Signer, server_name: str) -> None:
        self._store = store
        self.signer = signer
        self.server_name = server_name
        self._sign_lock = threading.Lock()

    def origin(self, tenant_id: str) -> str:
        return f"{self.server_name}/{tenant_id}"

    # -- checkpoints -----------------------------------------------------------------------

    def sign_pending(self) -> list[StoredCheckpoint]:
        """Sign a checkpoint for every tenant whose tree grew since its last one."""
        signed = []
        with self._sign_lock:
            for tenant_id, head, last in self._store.checkpoint_candidates():
                try:
                    checkpoint = self._sign(tenant_id, head, last)
                except TrailkeepError as exc:
                    log.critical("not signing a checkpoint for %s: %s", tenant_id, exc.message)
                    continue
                if checkpoint is not None:
                    signed.append(checkpoint)
        return signed

    def _sign(
        self, tenant_id: str, head: TreeHead, last: StoredCheckpoint | None
    ) -> StoredCheckpoint | None:
        root = head.root()
        if last is not None:
            # Never sign a head that does not extend the last one: prove it first.
            proof = self._hashes(tenant_id, consistency(last.size, head.size))
            verify_consistency(RFC9162, last.size, head.size, proof, last.root_hash, root)
        body = Checkpoint(self.origin(tenant_id), head.size, root).to_body()
        checkpoint = StoredCheckpoint(
            tenant_id, head.size, root, self.signer.sign_note(body), format_time(utcnow())
        )
        return checkpoint if self._store.add_checkpoint(checkpoint) else None

    def latest_checkpoint(self, tenant_id: str) -> StoredCheckpoint:
        """The newest signed checkpoint; a tenant with none yet gets its first one now."""
        checkpoint = self._store.latest_checkpoint(tenant_id)
        if checkpoint is None:
            self.sign_pending()
            checkpoint = self._store.latest_checkpoint(tenant_id)
        if checkpoint is None:
            raise NotFoundError(f"no checkpoint for tenant {tenant_id!r}")
        return checkpoint

    def checkpoint(self, tenant_id: str, size: int | None) -> StoredCheckpoint:
        if size is None:
            return self.latest_checkpoint(tenant_id)
        checkpoint = self._store.checkpoint_at(tenant_id, size)
        if checkpoint is None:
            raise NotFoundError(f"no signed checkpoint of size {size}; see /v1/log/checkpoint")
        return checkpoint

    # -- proofs ----------------------------------------------------------------------------

    def _hashes(self, tenant_id: str, nodes: Nodes) -> list[bytes]:
        return nodes.rehash(self._store.read_nodes(tenant_id, nodes.ids), RFC9162)

    def _size(self, tenant_id: str) -> int:
        return self._store.tree_head(tenant_id).size

    def inclusion_proof(self, tenant_id: str, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        current = self._size(tenant_id)
        if not 0 <= index < size <= current:
            raise InvalidInputError(
                f"need 0 <= index < size <= {current} (the log size), got index={index} size={size}"
            )
        return self._hashes(tenant_id, inclusion(index, size))

    def consistency_proof(self, tenant_id: str, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from the tree of ``size1`` leaves to that of ``size2``."""
        current = self._size(tenant_id)
        if not 0 <= size1 <= size2 <= current:
            raise InvalidInputError(
                f"need 0 <= from <= to <= {current} (the log size), got from={size1} to={size2}"
            )
        return self._hashes(tenant_id, consistency(size1, size2))

    def leaves(self, tenant_id: str, start: int, end: int) -> list[bytes]:
        current = self._size(tenant_id)
        if not 0 <= start <= end <= current or end - start > MAX_LEAVES:
            raise InvalidInputError(
                f"need 0 <= start <= end <= {current} and at most {MAX_LEAVES} leaves,"
                f" got start={start} end={end}"
            )
        return self._store.leaf_hashes(tenant_id, start, end)

    def event_proof(self, tenant_id: str, event_id: str, size: int | None) -> EventProof:
        """An event with its inclusion proof to the latest (or the given) checkpoint."""
        evidence = self._store.get_evidence(tenant_id, event_id)
        if evidence is None:
            raise NotFoundError(f"no event {event_id!r} in this tenant")
        checkpoint = self.checkpoint(tenant_id, size)
        seq = evidence.event.seq
        if seq >= checkpoint.size:
            raise ConflictError(
                f"event seq {seq} is not yet covered by a signed checkpoint (size"
                f" {checkpoint.size}); checkpoints are signed every few seconds, retry shortly",
                code="NOT_YET_CHECKPOINTED",
            )
        hashes = self._hashes(tenant_id, inclusion(seq, checkpoint.size))
        return EventProof(evidence, checkpoint, hashes)


class Checkpointer:
    """A background thread that signs pending checkpoints every ``interval`` seconds."""

    def __init__(self, service: LogService, interval: float) -> None:
        self._service = service
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        # Fixed-rate ticks: the time spent signing does not push the next tick back, so an
        # event waits at most one interval (plus one signing) for its checkpoint.
        next_tick = time.monotonic() + self._interval
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            started = time.monotonic()
            next_tick += self._interval
            if next_tick < started:  # fell behind: never sign twice within one interval
                next_tick = started + self._interval
            try:
                self._service.sign_pending()
            except TrailkeepError as exc:
                log.error("checkpointing failed, will retry: %s", exc.message)
            except Exception:
                log.exception("checkpointing failed, will retry")

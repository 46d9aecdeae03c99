"""Each tenant's verifiable log: signed checkpoints, and inclusion and consistency proofs."""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from dataclasses import dataclass

from trailkeep.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    TrailkeepError,
)
from trailkeep.merkle import (
    RFC9162,
    Checkpoint,
    Nodes,
    Signer,
    consistency,
    inclusion,
    open_checkpoint,
    verify_consistency,
)
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.service.events import Limits, prepare_event
from trailkeep.service.forks import Fork, ForkGuard, database_root_at, find_fork
from trailkeep.service.signer_state import Remembered, SignerState, StateTransaction
from trailkeep.storage.base import Evidence, PrunedEvent, Store, StoredCheckpoint
from trailkeep.storage.tree import TreeHead

__all__ = ["Accepted", "Checkpointer", "EventProof", "LogService"]

log = logging.getLogger(__name__)

#: Most leaf hashes one ``/v1/log/leaves`` answer carries.
MAX_LEAVES = 1000


@dataclass(frozen=True, slots=True)
class EventProof:
    """An event, what recomputes its leaf, and its inclusion proof to a signed checkpoint.

    For an event retention pruned, ``evidence`` is its tombstone: the proof still holds for
    its leaf hash, but no content is left to recompute the leaf from.
    """

    evidence: Evidence | PrunedEvent
    checkpoint: StoredCheckpoint
    hashes: list[bytes]

    @property
    def seq(self) -> int:
        found = self.evidence
        return found.seq if isinstance(found, PrunedEvent) else found.event.seq


@dataclass(frozen=True, slots=True)
class Accepted:
    """An operator's acceptance of a database: the fork it ended, its audit event, and the
    checkpoint now remembered."""

    fork: Fork
    event: StoredEvent
    checkpoint: StoredCheckpoint


def _accept_event(fork: Fork, actor: str, reason: str) -> NewEvent:
    signed = fork.signed
    return prepare_event(
        {
            "action": "log.accept_database",
            "category": "system",
            "outcome": "success",
            "actor": {"id": actor, "type": "operator"},
            "target": {"id": fork.tenant_id, "type": "log"},
            "message": reason or f"operator accepted the database: {fork.describe()}",
            "metadata": {
                "signed_size": signed.size,
                "signed_root": base64.b64encode(signed.root_hash).decode(),
                "signed_note": signed.note,
                "database_size": fork.head_size,
                "database_root": base64.b64encode(fork.head_root).decode(),
            },
        },
        Limits(),
    )


def _differs(stored: StoredCheckpoint, remembered: Remembered) -> bool:
    return (stored.size, stored.root_hash) != (remembered.size, remembered.root_hash)


class LogService:
    """Proofs and checkpoints over a store's per-tenant trees.

    It never signs a checkpoint that does not extend the last one its key signed for the
    tenant, remembered outside the database in ``state`` (``service.signer_state``); a tenant
    whose database tree does not extend it is fenced (``service.forks``) by :meth:`protect`.

    Args:
        store: where the trees live.
        signer: the checkpoint signing key.
        server_name: the origin prefix; a tenant's log is ``<server_name>/<tenant>``.
        state: what ``signer`` has signed, kept beside its key file.
        sweep_interval: seconds between looks at the checkpoints other processes stored
            (with a copy of the key file and their own state), to remember them too.
    """

    def __init__(
        self,
        store: Store,
        signer: Signer,
        server_name: str,
        *,
        state: SignerState,
        sweep_interval: float = 5.0,
    ) -> None:
        self._store = store
        self.signer = signer
        self.server_name = server_name
        self.state = state
        self.guard = ForkGuard()
        self._adopted: dict[str, Remembered] | None = None
        self._sweep_interval = sweep_interval
        self._next_sweep = 0.0
        self._sign_lock = threading.Lock()

    def origin(self, tenant_id: str) -> str:
        return f"{self.server_name}/{tenant_id}"

    def protect(self) -> list[Fork]:
        """Check every remembered checkpoint against the database, fence the tenants whose
        tree does not extend theirs, and refuse appends to them from now on.

        Called once at start, before the server takes writes; returns the forks found.
        """
        # The transaction also fails now, not at the first checkpoint, if it cannot be written.
        with self._sign_lock, self.state.transaction() as txn:
            assert txn is not None
            self._adopt(self.state.read(), recheck=True)
            self._adopt_stored(txn)
        self._store.append_guard = self.guard.check_append
        return [f for t in self.guard.fenced() if (f := self.guard.fork(t)) is not None]

    def compare_remembered(self) -> list[tuple[Remembered, Fork | None]]:
        """Every remembered checkpoint, in tenant order, with the database's fork of it (None
        where the database extends it). Reads only; fences nothing."""
        remembered = self.state.read()
        return [(remembered[t], find_fork(self._store, remembered[t])) for t in sorted(remembered)]

    def _adopt(self, remembered: dict[str, Remembered], *, recheck: bool = False) -> None:
        """Take in the state file's checkpoints (some may come from other processes sharing
        the key file); re-check a fenced tenant whose entry changed (an accepted database)."""
        if remembered is self._adopted and not recheck:
            return
        for tenant_id, signed in remembered.items():
            self.guard.remember(signed)
            fork = self.guard.fork(tenant_id)
            if recheck or (fork is not None and fork.signed != signed):
                found = find_fork(self._store, signed)
                if found is None:
                    self.guard.lift(tenant_id)
                else:
                    self.guard.fence(found)
        self._adopted = remembered

    # -- checkpoints -----------------------------------------------------------------------

    def sign_pending(self) -> list[StoredCheckpoint]:
        """Sign a checkpoint for every tenant whose tree grew since its last one."""
        with self._sign_lock:
            signed = self._sign_all(wait=True)
            assert signed is not None
            return signed

    def try_sign_pending(self) -> list[StoredCheckpoint] | None:
        """:meth:`sign_pending`, or None at once if another thread or process is signing.

        The store's writer thread signs this way: it must never wait, since the other signer
        may be waiting for the writer to store its checkpoint.
        """
        if not self._sign_lock.acquire(blocking=False):
            return None
        try:
            return self._sign_all(wait=False)
        finally:
            self._sign_lock.release()

    def _sign_all(self, *, wait: bool) -> list[StoredCheckpoint] | None:
        candidates = self._store.checkpoint_candidates()
        signed = []
        with self.state.transaction(wait=wait) as txn:
            if txn is None:
                return None
            self._adopt(self.state.read())
            for tenant_id, head, last in candidates:
                try:
                    checkpoint = self._sign(txn, tenant_id, head, last)
                except TrailkeepError as exc:
                    log.critical("not signing a checkpoint for %s: %s", tenant_id, exc.message)
                    continue
                if checkpoint is not None:
                    signed.append(checkpoint)
        # Remembered durably (the transaction wrote the state file) before anyone sees them.
        return [c for c in signed if self._store.add_checkpoint(c)]

    def remember_stored(self, *, if_due: bool = False) -> None:
        """Remember the newest checkpoints other processes stored with this key.

        The checkpointer's own thread calls it every ``sweep_interval`` (``if_due``) and when
        it stops; never the writer's thread, since it reads every tenant's latest checkpoint.
        """
        if if_due and time.monotonic() < self._next_sweep:
            return
        with self._sign_lock, self.state.transaction() as txn:
            assert txn is not None
            self._adopt_stored(txn)

    def _adopt_stored(self, txn: StateTransaction) -> None:
        """Remember the newest stored checkpoint of each tenant if this key signed it after
        what this state remembers: another process with a copy of the key file (and its own
        state) signed it, and this process must not sign a fork of it either."""
        self._next_sweep = time.monotonic() + self._sweep_interval
        verifier = self.signer.verifier()
        for tenant in self._store.list_tenants():
            stored = self._store.latest_checkpoint(tenant.id)
            remembered = txn.tenants.get(tenant.id)
            if stored is None or (remembered is not None and stored.size <= remembered.size):
                continue
            if self.guard.fork(tenant.id) is not None:
                continue
            try:
                origin = open_checkpoint(stored.note, verifier).origin
            except IntegrityError:
                continue  # signed by another key: not this signer's to remember
            if remembered is not None and (fork := find_fork(self._store, remembered)):
                self.guard.fence(fork)
                continue
            if database_root_at(self._store, tenant.id, stored.size) == stored.root_hash:
                self._remember(txn, stored, origin)

    def _sign(
        self, txn: StateTransaction, tenant_id: str, head: TreeHead, last: StoredCheckpoint | None
    ) -> StoredCheckpoint | None:
        if last is not None and last.size >= head.size:
            return None  # another process signed this far already
        if self.guard.fork(tenant_id) is not None:
            return None  # fenced until an operator accepts the database
        remembered = txn.tenants.get(tenant_id)
        if remembered is not None:
            if remembered.size > head.size:
                return None  # a process sharing this key signed a later head already
            fork = find_fork(self._store, remembered, head)
            if fork is not None:
                self.guard.fence(fork)
                return None
            if remembered.size == head.size and remembered.origin == self.origin(tenant_id):
                # Signed and remembered, but not stored (its signer is about to, or crashed
                # in between): store that very note.
                return StoredCheckpoint(
                    tenant_id, head.size, remembered.root_hash, remembered.note,
                    remembered.signed_at,
                )  # fmt: skip
        root = head.root()
        if last is not None and (remembered is None or _differs(last, remembered)):
            # Never sign a head that does not extend the last one stored: prove it first.
            proof = self._hashes(tenant_id, consistency(last.size, head.size))
            verify_consistency(RFC9162, last.size, head.size, proof, last.root_hash, root)
        origin = self.origin(tenant_id)
        checkpoint = self._checkpoint_of(tenant_id, head.size, root, origin)
        self._remember(txn, checkpoint, origin)
        return checkpoint

    def _checkpoint_of(
        self, tenant_id: str, size: int, root: bytes, origin: str
    ) -> StoredCheckpoint:
        note = self.signer.sign_note(Checkpoint(origin, size, root).to_body())
        return StoredCheckpoint(tenant_id, size, root, note, format_time(utcnow()))

    def _remember(
        self,
        txn: StateTransaction,
        checkpoint: StoredCheckpoint,
        origin: str,
        accepted_at: str | None = None,
    ) -> None:
        entry = Remembered(
            checkpoint.tenant_id,
            origin,
            checkpoint.size,
            checkpoint.root_hash,
            checkpoint.note,
            checkpoint.signed_at,
            accepted_at,
        )
        txn.remember(entry)
        self.guard.remember(entry)

    def accept_database(self, tenant_id: str, actor: str, reason: str = "") -> Accepted | None:
        """An operator's decision: sign the tenant's database tree as it now is, in place of the
        remembered checkpoint it does not extend, and record the decision in the tenant's log.

        The audit event (action ``log.accept_database``, category ``system``) is appended
        first, so the new checkpoint covers it. Returns None, changing nothing, when the
        database does extend the remembered checkpoint.

        Raises:
            NotFoundError: this signer remembers no checkpoint of the tenant.
        """
        with self._sign_lock, self.state.transaction() as txn:
            assert txn is not None
            signed = txn.tenants.get(tenant_id)
            if signed is None:
                raise NotFoundError(
                    f"the signer state {self.state.path} holds no checkpoint of tenant"
                    f" {tenant_id!r}: nothing to accept"
                )
            fork = find_fork(self._store, signed)
            if fork is None:
                return None
            with self.guard.accepting(tenant_id):
                audit = self._store.append(tenant_id, [_accept_event(fork, actor, reason)])
                event = audit.result()[0].event
            head = self._store.tree_head(tenant_id)
            checkpoint = self._checkpoint_of(tenant_id, head.size, head.root(), signed.origin)
            self._remember(txn, checkpoint, signed.origin, accepted_at=checkpoint.signed_at)
            self.guard.lift(tenant_id)
        self._store.add_checkpoint(checkpoint)
        return Accepted(fork, event, checkpoint)

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
        evidence: Evidence | PrunedEvent | None = self._store.get_evidence(tenant_id, event_id)
        if evidence is None:
            evidence = self._store.get_pruned(tenant_id, event_id)
        if evidence is None:
            raise NotFoundError(f"no event {event_id!r} in this tenant")
        checkpoint = self.checkpoint(tenant_id, size)
        seq = evidence.seq if isinstance(evidence, PrunedEvent) else evidence.event.seq
        if seq >= checkpoint.size:
            raise ConflictError(
                f"event seq {seq} is not yet covered by a signed checkpoint (size"
                f" {checkpoint.size}); checkpoints are signed every few seconds, retry shortly",
                code="NOT_YET_CHECKPOINTED",
            )
        hashes = self._hashes(tenant_id, inclusion(seq, checkpoint.size))
        return EventProof(evidence, checkpoint, hashes)


class Checkpointer:
    """Signs pending checkpoints at most once every ``interval`` seconds.

    Under load it signs on the store's writer thread, right after the first group commit once
    an interval has passed (``Store.after_commit``): the events just acknowledged are covered
    at once and no event waits much longer than one interval. Its own thread signs what is
    left when writes stop, a quarter interval later than that (under load the writer has
    signed by then; signing through the writer's queue would wait behind a group commit).
    Signing from the writer never waits for the sign lock, so a thread signing through the
    writer's queue (this one, or a request for a tenant's first checkpoint) cannot deadlock it.
    """

    def __init__(self, service: LogService, store: Store, interval: float) -> None:
        self._service = service
        self._store = store
        self._interval = interval
        self._due = time.monotonic() + interval
        self._due_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)

    def start(self) -> None:
        self._store.after_commit = self.sign_if_due
        self._store.after_commit_due = self._due
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._store.after_commit == self.sign_if_due:
            self._store.after_commit = None
            self._store.after_commit_due = math.inf
        if self._thread.is_alive():
            self._thread.join()
            try:  # what other processes signed until now: this one must not fork it later
                self._service.remember_stored()
            except TrailkeepError as exc:
                log.error("could not remember the checkpoints stored by others: %s", exc.message)

    def sign_if_due(self, *, wait: bool = False) -> None:
        """Sign if an interval has passed since the last signing began."""
        with self._due_lock:
            now = time.monotonic()
            if now < self._due:
                return
            due, self._due = self._due, now + self._interval
            self._store.after_commit_due = self._due
        try:
            signed = self._service.sign_pending() if wait else self._service.try_sign_pending()
            if signed is None:
                with self._due_lock:  # someone else is signing: let the next commit retry
                    self._due = self._store.after_commit_due = min(self._due, due)
        except TrailkeepError as exc:
            log.error("checkpointing failed, will retry: %s", exc.message)
        except Exception:
            log.exception("checkpointing failed, will retry")

    def _run(self) -> None:
        grace = self._interval / 4
        while not self._stop.wait(max(0.0, self._due + grace - time.monotonic())):
            self.sign_if_due(wait=True)
            try:
                self._service.remember_stored(if_due=True)
            except TrailkeepError as exc:
                log.error("could not remember the checkpoints stored by others: %s", exc.message)

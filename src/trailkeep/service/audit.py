"""The auditor's fsck: re-check a live database against its own signed checkpoints.

Recomputes every event's leaf from its stored content and salts, rebuilds each tenant's tree,
and compares it with the stored leaf hashes, interior nodes, tree head and every checkpoint,
whose signatures are checked with the server's public key. It reads the database directly, so
it finds rows altered, deleted, reordered or added behind the service's back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from trailkeep.errors import IntegrityError, TrailkeepError
from trailkeep.merkle import RFC9162, CompactRange, NodeID, Verifier, open_checkpoint
from trailkeep.model.evidence import event_leaf_hash
from trailkeep.storage.base import Store, StoredCheckpoint

__all__ = ["AuditReport", "Problem", "audit_tenant"]

_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: where (seq and event id, when known) and what."""

    kind: str
    message: str
    seq: int | None = None
    event_id: str | None = None

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "log"
        if self.event_id:
            where += f", event {self.event_id}"
        return f"[{self.kind}] {where}: {self.message}"


@dataclass(slots=True)
class AuditReport:
    tenant_id: str
    events: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _checkpoints(
    store: Store, tenant_id: str, origin: str, verifier: Verifier, report: AuditReport
) -> dict[int, StoredCheckpoint]:
    """Checkpoints whose signature, origin and stored root agree; problems for the others."""
    good = {}
    for stored in store.list_checkpoints(tenant_id):
        try:
            checkpoint = open_checkpoint(stored.note, verifier, origin)
        except TrailkeepError as exc:
            report.problems.append(
                Problem("checkpoint", f"checkpoint of size {stored.size}: {exc.message}")
            )
            continue
        if checkpoint.size != stored.size or checkpoint.root_hash != stored.root_hash:
            report.problems.append(
                Problem("checkpoint", f"stored row of size {stored.size} differs from its note")
            )
            continue
        good[checkpoint.size] = stored
    report.checkpoints = len(good)
    return good


def audit_tenant(
    store: Store,
    tenant_id: str,
    verifier: Verifier,
    origin: str,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Check one tenant's events, tree and checkpoints; never raises for what it finds."""
    report = AuditReport(tenant_id)
    checkpoints = _checkpoints(store, tenant_id, origin, verifier, report)
    head = store.tree_head(tenant_id)
    last_size = max(checkpoints, default=0)
    total = max(head.size, last_size)
    compact = CompactRange(RFC9162)
    seq = 0
    for start in range(0, total, _CHUNK):
        chunk = store.scan_evidence(tenant_id, start, min(start + _CHUNK, total))
        for evidence in chunk:
            event = evidence.event
            while seq < event.seq:
                report.problems.append(Problem("missing", "no event at this position", seq))
                compact.append(bytes(32))  # keep positions aligned; roots will not match
                seq += 1
            try:
                leaf = event_leaf_hash(event.to_wire(), evidence.salts, evidence.redacted)
            except IntegrityError as exc:
                report.problems.append(Problem("field", exc.message, event.seq, event.id))
                leaf = event.leaf_hash or bytes(32)
            else:
                if leaf != event.leaf_hash:
                    report.problems.append(
                        Problem(
                            "altered",
                            "content or stored hash does not match its leaf",
                            event.seq,
                            event.id,
                        )
                    )
            _append_and_check(store, tenant_id, compact, leaf, checkpoints, report)
            seq += 1
        if progress is not None:
            progress(len(chunk))
    while seq < total:
        report.problems.append(Problem("missing", "no event at this position", seq))
        compact.append(bytes(32))
        seq += 1
    report.events = compact.size
    if head.size != compact.size or head.root() != compact.root():
        report.problems.append(
            Problem("tree-head", f"stored tree head (size {head.size}) differs from the events")
        )
    return report


def _append_and_check(
    store: Store,
    tenant_id: str,
    compact: CompactRange,
    leaf: bytes,
    checkpoints: dict[int, StoredCheckpoint],
    report: AuditReport,
) -> None:
    nodes = compact.append(leaf)
    if nodes:
        ids = [NodeID(level, index) for level, index, _ in nodes]
        try:
            stored = store.read_nodes(tenant_id, ids)
        except TrailkeepError as exc:
            report.problems.append(Problem("tree-node", exc.message, compact.size - 1))
        else:
            for (level, index, expected), got in zip(nodes, stored, strict=True):
                if got != expected:
                    report.problems.append(
                        Problem(
                            "tree-node",
                            f"stored node ({level}, {index}) was altered",
                            compact.size - 1,
                        )
                    )
    checkpoint = checkpoints.get(compact.size)
    if checkpoint is not None and compact.root() != checkpoint.root_hash:
        report.problems.append(
            Problem(
                "checkpoint",
                f"events do not recompute to the root of checkpoint size {checkpoint.size}",
            )
        )

"""Every stored checkpoint: its signature, its root against the events, and the gaps between.

What can be proved from the database and the public key alone: a stored checkpoint that does not
verify, or whose root the stored events do not recompute to (the first such one is reported,
with the last one that does match, so the change lies between them). What can only be
*suspected*: a deleted checkpoint row. The server signs within ``checkpoint_interval`` whenever
a tenant's tree grew, and every event's ``received_at`` is committed in its leaf, so events that
arrived over a long span with no stored checkpoint between them mean a deleted row — or a server
that stopped without signing (a crash). A checkpoint held outside the database (the signer's
state, ``--checkpoint``) proves a deletion or truncation outright.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

from trailkeep.errors import TrailkeepError
from trailkeep.merkle import Checkpoint, Verifier, open_checkpoint
from trailkeep.storage.base import Store, StoredCheckpoint

from ._report import Problem
from ._tree import TreeChecker

__all__ = ["CheckpointChecker"]


class CheckpointChecker:
    """A tenant's checkpoints: those stored, and any held outside the database.

    Args:
        store: the store audited.
        tenant_id: its tenant.
        verifier: the log's public key.
        origin: the checkpoints' origin line (``<server name>/<tenant>``).
        problems: where findings are appended.
        held: signed notes of checkpoints of this tenant kept outside the database.
    """

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        verifier: Verifier,
        origin: str,
        problems: list[Problem],
        held: Sequence[str] = (),
    ) -> None:
        self._problems = problems
        self.stored = self._verified(store.list_checkpoints(tenant_id), verifier, origin)
        self.held = self._held(held, verifier, origin)

    def _verified(
        self, rows: list[StoredCheckpoint], verifier: Verifier, origin: str
    ) -> dict[int, StoredCheckpoint]:
        good = {}
        for stored in rows:
            try:
                checkpoint = open_checkpoint(stored.note, verifier, origin)
            except TrailkeepError as exc:
                self._add(f"checkpoint of size {stored.size}: {exc.message}")
                continue
            if checkpoint.size != stored.size or checkpoint.root_hash != stored.root_hash:
                self._add(f"stored row of size {stored.size} differs from its signed note")
                continue
            good[checkpoint.size] = stored
        return good

    def _held(self, notes: Sequence[str], verifier: Verifier, origin: str) -> list[Checkpoint]:
        out = []
        for note in notes:
            try:
                out.append(open_checkpoint(note, verifier, origin))
            except TrailkeepError as exc:
                self._add(f"the checkpoint held outside the database: {exc.message}")
        return out

    def sizes(self) -> set[int]:
        return {*self.stored, *(c.size for c in self.held)}

    def watched(self, head_size: int) -> frozenset[int]:
        """Positions whose ``received_at`` the gap check reads: each run's first and last."""
        out: set[int] = set()
        for start, end in self._runs(head_size):
            out.update((start, end - 1))
        return frozenset(out)

    def _runs(self, head_size: int) -> list[tuple[int, int]]:
        """Runs of positions no stored checkpoint separates: ``[a, b)`` between neighbours,
        and from the last one to the head."""
        bounds = sorted({0, *self.stored, head_size})
        return [(a, b) for a, b in pairwise(bounds) if b - a >= 2 and b <= head_size]

    def check_roots(self, tree: TreeChecker) -> None:
        """Each stored checkpoint's root against the stored leaves; the first that differs is
        reported (later ones differ because of it), unless a reported row explains it."""
        last_good = None
        for size in sorted(self.stored):
            root, tainted = tree.roots.get(size, (b"", True))
            if root == self.stored[size].root_hash:
                last_good = size
                continue
            if not tainted:
                later = sum(1 for s in self.stored if s > size)
                since = "" if last_good is None else f" (size {last_good} does, so the change"
                since += "" if last_good is None else f" lies in seq {last_good}-{size - 1})"
                self._add(
                    f"the stored leaves do not recompute to the signed root of checkpoint size"
                    f" {size}{since}; {later} later checkpoint(s) differ with it",
                )
            return

    def check_held(self, tree: TreeChecker, stored_size: int) -> None:
        """A checkpoint held outside the database: the log must still extend it, and keep it."""
        for held in self.held:
            if held.size > stored_size:
                self._add(
                    f"the log was truncated: a checkpoint held outside the database has size"
                    f" {held.size}, the database's log only {stored_size} events",
                    "truncated",
                )
                continue
            root, tainted = tree.roots.get(held.size, (b"", True))
            if root != held.root_hash and not tainted:
                self._add(
                    f"the stored leaves do not recompute to the root of the checkpoint of size"
                    f" {held.size} held outside the database: the log was rewritten",
                )
            if held.size not in self.stored:
                self._add(
                    f"the checkpoint of size {held.size} held outside the database is not"
                    " stored in it: checkpoint rows were deleted",
                )

    def check_gaps(self, received: dict[int, str], head_size: int, max_gap: float) -> None:
        """Runs of events received over more than ``max_gap`` seconds with no stored checkpoint
        between them (0 turns the check off)."""
        if max_gap <= 0:
            return
        for start, end in self._runs(head_size):
            first, last = received.get(start), received.get(end - 1)
            if first is None or last is None:
                continue  # a missing row, already reported
            span = (_parse(last) - _parse(first)).total_seconds()
            if span > max_gap:
                after = "the start" if start == 0 else f"size {start}"
                until = f"size {end}" if end in self.stored else "the head"
                self._add(
                    f"no stored checkpoint between {after} and {until}, yet seq {start}-{end - 1}"
                    f" arrived over {span:.0f} s (the server signs within its"
                    " checkpoint_interval): checkpoint rows were deleted, or the server stopped"
                    " without signing",
                    "checkpoint-gap",
                    start,
                )

    def _add(self, message: str, kind: str = "checkpoint", seq: int | None = None) -> None:
        self._problems.append(Problem(kind, message, seq))


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)

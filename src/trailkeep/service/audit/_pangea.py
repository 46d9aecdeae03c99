"""Pangea's tree against the log: each stored Pangea leaf against its event's envelope, and the
head's Pangea frontier against the root of the stored leaves.

The second tree (DESIGN §3, ``storage.tree``) is written with the first; a row altered or lost
in ``pangea_tree_nodes`` would make the Pangea SDK report events as corrupted, so ``verify
database`` checks it too. Erased (redacted) and pruned events have no envelope to compare, so
only their leaf's place in the root is checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from trailkeep.errors import InvalidInputError
from trailkeep.merkle import PANGEA_LEGACY, CompactRange
from trailkeep.model.pangea import pangea_leaf
from trailkeep.storage.base import Store
from trailkeep.storage.tree import TreeHead

from ._report import Problem
from ._tree import aligned, climb, join_subtree

__all__ = ["PangeaChecker"]


class PangeaChecker:
    """Appends a tenant's stored Pangea leaves chunk by chunk, checking each against its event."""

    def __init__(
        self, store: Store, tenant_id: str, problems: list[Problem], *, envelopes: bool = True
    ) -> None:
        """``envelopes``: also hash each event's envelope against its stored leaf (a second
        read of every event, in Python: ``verify database --deep``)."""
        self._store = store
        self._envelopes = envelopes
        self._tenant = tenant_id
        self._problems = problems
        self._range = CompactRange(PANGEA_LEGACY)
        self._complete = True

    def append(self, start: int, end: int, tainted: Iterable[int]) -> None:
        """Check the Pangea leaves of ``[start, end)``; ``tainted`` positions (rows missing or
        altered, already reported) are not judged again."""
        if not self._envelopes and self._range.size == start and aligned(start, end):
            leaves = self._store.audit_leaf_hashes(self._tenant, start, end, tree="pangea")
            if leaves:  # every leaf there: the chunk's subtree in C, joined to the frontier
                levels = climb(leaves, False)
                root = levels[-1] if levels else leaves
                self._range, _ = join_subtree(self._range, PANGEA_LEGACY, root, len(levels))
                return
        skip = set(tainted)
        stored = self._store.leaf_hashes(self._tenant, start, end, tree="pangea")
        if len(stored) != end - start:
            self._complete = False
            self._problems.append(
                Problem(
                    "pangea-leaf",
                    f"Pangea's tree has {len(stored)} leaves for the {end - start} positions"
                    f" [{start}, {end})",
                    start,
                )
            )
            return
        if not self._envelopes:
            self._range.extend(stored)
            return
        for evidence in self._store.scan_evidence(self._tenant, start, end):
            event = evidence.event
            if evidence.redacted or event.seq in skip:
                continue
            if pangea_leaf(event.content, event.received_at) != stored[event.seq - start]:
                self._problems.append(
                    Problem(
                        "pangea-leaf",
                        "the Pangea leaf is not the hash of the event's envelope",
                        event.seq,
                        event.id,
                    )
                )
        self._range.extend(stored)

    def check_head(self, head: TreeHead) -> None:
        """The head's Pangea frontier must give the root of the stored leaves."""
        if not self._complete or self._range.size != head.size:
            return
        try:
            root = head.pangea_root()
        except InvalidInputError:  # a frontier that does not fit the size
            root = None
        if root != self._range.root():
            self._problems.append(
                Problem(
                    "pangea-head",
                    f"the head's Pangea root at size {head.size} is not the root of the stored"
                    " Pangea leaves",
                )
            )

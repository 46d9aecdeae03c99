"""One tenant's audit, in one pass over its events: the order of the checks and their ranges."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from trailkeep.errors import TrailkeepError
from trailkeep.merkle import Verifier
from trailkeep.storage.base import AuditChunk, PrunedEvent, Store
from trailkeep.storage.tree import TreeHead

from ._checkpoints import CheckpointChecker
from ._events import EventChecker
from ._pangea import PangeaChecker
from ._report import AuditReport, Problem
from ._rollups import compare_rollups
from ._tree import TreeChecker

__all__ = ["DEFAULT_MAX_GAP", "audit_tenant"]

#: Events received over more than this many seconds with no stored checkpoint between them are
#: reported (``checkpoint-gap``); the server signs within ``checkpoint_interval`` (1 s).
DEFAULT_MAX_GAP = 300.0
#: Events per read: a power of two, so that each chunk completes whole subtrees.
_CHUNK = 4096


def audit_tenant(
    store: Store,
    tenant_id: str,
    verifier: Verifier,
    origin: str,
    progress: Callable[[int], None] | None = None,
    *,
    held: Sequence[str] = (),
    max_gap: float = DEFAULT_MAX_GAP,
    native: bool = True,
    deep: bool = False,
) -> AuditReport:
    """Check everything of one tenant that answers a query; never raises for what it finds.

    Args:
        store: the store to audit (read directly; nothing is written).
        tenant_id: the tenant.
        verifier: the log's public key, for the checkpoints' signatures.
        origin: the checkpoints' origin line.
        progress: called with the number of events checked after each chunk.
        held: signed notes of this tenant's checkpoints kept outside the database (the
            signer's state, ``--checkpoint``): the log must extend each, and store it.
        max_gap: see ``DEFAULT_MAX_GAP``; 0 turns the gap check off.
        native: let the C part vouch for the rows it can (``Store.audit_scan``); False checks
            every row the exact way, the reference the C part is tested against.
        deep: also recompute every event's Pangea envelope hash against its stored Pangea
            leaf (``verify database --deep``); without it Pangea's tree is checked against its
            head only, which a leaf altered alone already fails.
    """
    report = AuditReport(tenant_id)
    problems = report.problems
    checkpoints = CheckpointChecker(store, tenant_id, verifier, origin, problems, held)
    head = store.tree_head(tenant_id)
    # Positions up to the head and every stored checkpoint are the log; a held checkpoint
    # past them is a truncation (reported as such), not rows to look for.
    total = max(head.size, *checkpoints.stored, 0)
    tree = TreeChecker(store, tenant_id, {*checkpoints.sizes(), head.size}, problems)
    watch = checkpoints.watched(head.size)
    events = EventChecker(tenant_id, store.audit_text, problems, watch)
    missing = _Missing(problems)
    pangea = PangeaChecker(store, tenant_id, problems, envelopes=deep)
    tally = events.rollups.spec()
    with store.audit_scan(tenant_id) as scan:
        for start in range(0, total, _CHUNK):
            end = min(start + _CHUNK, total)
            if native:
                rows = scan(start, end, watch, tally)
            else:
                rows = AuditChunk.unchecked(store.audit_rows(tenant_id, start, end), start, end)
            found = rows.vouched + len(rows.rest)
            pruned = store.scan_pruned(tenant_id, start, end)
            present: Sequence[int] = (
                range(start, end) if found == end - start else rows.present(start)
            )
            missing.scan(start, end, _with_pruned(present, pruned))
            chunk = events.check(rows, start, end)
            _pruned_leaves(present, pruned, start, chunk.leaves, problems)
            tree.append(start, end, chunk.leaves, chunk.tainted)
            if end <= head.size:
                pangea.append(start, end, chunk.tainted)
            if progress is not None:
                progress(found + len(pruned))
        # the common case, stored rollups equal to the recount, decided in C by the scan's
        # reader; anything else (or no answer) is compared below, row by row
        whole = events.rollups.whole
        rollups_match = whole is not None and store.audit_rollups_match(tenant_id, whole) is True
    missing.flush()
    report.events = tree.size
    report.checkpoints = len(checkpoints.stored)
    _head(head.size, _root(head), total, tree, problems)
    pangea.check_head(head)
    _strays(store, tenant_id, total, problems)
    tree.check_strays(total)
    checkpoints.check_roots(tree)
    checkpoints.check_held(tree, total)
    checkpoints.check_gaps(events.received_at, head.size, max_gap)
    problems.extend(events.redactions.problems(missing.last))
    stored_rollups = None if rollups_match else store.audit_rollups(tenant_id)
    if stored_rollups is not None and not events.rollups.matches(stored_rollups):
        problems.extend(compare_rollups(stored_rollups, _as_kept(store, events), missing.count))
    return report


class _Missing:
    """Runs of positions with no row, one problem per run."""

    def __init__(self, problems: list[Problem]) -> None:
        self._problems = problems
        self._run: tuple[int, int] | None = None  # [first, last + 1)
        self._next = 0
        self.count = 0
        self.last: int | None = None

    def scan(self, start: int, end: int, seqs: Iterable[int]) -> None:
        """Note positions ``[start, end)``, of which ``seqs`` (in order) have a row."""
        if isinstance(seqs, range) and seqs == range(self._next, end):
            self._next = end  # every position has its row: the common case
            return
        for seq in seqs:
            if seq > self._next:
                self._extend(self._next, seq)
            self._next = seq + 1
        if end > self._next:
            self._extend(self._next, end)
            self._next = end

    def _extend(self, first: int, end: int) -> None:
        if self._run is not None and self._run[1] == first:
            self._run = (self._run[0], end)
            return
        self.flush()
        self._run = (first, end)

    def flush(self) -> None:
        if self._run is None:
            return
        first, end = self._run
        self._run = None
        self.count += end - first
        self.last = end - 1
        where = (
            f"seq {first}" if end - first == 1 else f"seq {first}-{end - 1} ({end - first} events)"
        )
        self._problems.append(Problem("missing", f"no event at {where}: rows were deleted", first))


def _with_pruned(present: Sequence[int], pruned: Sequence[PrunedEvent]) -> Iterable[int]:
    """The positions that have a row or a tombstone, in order (for ``_Missing``)."""
    if not pruned:
        return present
    return sorted([*present, *(p.seq for p in pruned)])


def _pruned_leaves(
    present: Sequence[int],
    pruned: Sequence[PrunedEvent],
    start: int,
    leaves: list[bytes | None],
    problems: list[Problem],
) -> None:
    """A pruned position is leaf-only: its stored leaf joins the tree as it is (no content is
    left to check it against; the checkpoints' roots still do). A tombstone whose content is
    still stored, or whose leaf is gone, is a finding."""
    if not pruned:
        return
    with_rows = set(present)
    for p in pruned:
        if p.seq in with_rows:
            problems.append(
                Problem(
                    "pruned",
                    "the event is marked pruned, yet its content is still stored",
                    p.seq,
                    p.id,
                )
            )
        elif p.leaf_hash is None or len(p.leaf_hash) != 32:
            problems.append(
                Problem(
                    "missing", "the pruned event's leaf hash is gone from the tree", p.seq, p.id
                )
            )
        else:
            leaves[p.seq - start] = p.leaf_hash


def _head(
    size: int, root: bytes | None, total: int, tree: TreeChecker, problems: list[Problem]
) -> None:
    """The stored tree head: its size must be the log's, its root the leaves' root."""
    if size != total or root is None:
        problems.append(
            Problem(
                "tree-head",
                f"the stored tree head says size {size}, but the log's rows and checkpoints"
                f" reach {total}"
                if size != total
                else f"the stored tree head's frontier does not fit its size {size}",
            )
        )
        return
    recomputed, tainted = tree.roots.get(size, (b"", True))
    if recomputed != root and not tainted:
        problems.append(
            Problem("tree-head", f"the stored tree head of size {size} has another root")
        )


def _root(head: TreeHead) -> bytes | None:
    """The stored head's root; None if its frontier does not fit its size."""
    try:
        return head.root()
    except TrailkeepError:
        return None


def _strays(store: Store, tenant_id: str, size: int, problems: list[Problem]) -> None:
    """Rows outside the log ``[0, size)``: no tree covers them, yet list and stream serve
    them, and the next append to the tenant collides with them."""
    for seq, event_id in store.audit_strays(tenant_id, size):
        problems.append(
            Problem(
                "past-head",
                f"row lies outside the log (positions 0-{size - 1}, the tree head and its"
                " checkpoints): no proof covers it, list and stream serve it, and appends to"
                " this tenant fail when they reach its position",
                seq,
                event_id,
            )
        )


def _as_kept(store: Store, events: EventChecker) -> dict[tuple[str, str, str], int]:
    """The recounted rollups as the store keeps them: only what it counts
    (``Store.audit_rollups_keep``), values spelled as its text columns hold them."""
    kept: dict[tuple[str, str, str], int] = {}
    for (dim, period, value), n in events.rollups.expected().items():
        if store.audit_rollups_keep(dim, period):
            key = (dim, period, store.audit_text(value))
            kept[key] = kept.get(key, 0) + n
    return kept

"""One group commit's sequencing, idempotent replay and head bookkeeping, for every backend.

A backend's writer opens its write transaction, reads the heads of the tenants it appends to
(under its lock: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's ``SELECT ... FOR UPDATE``) and hands
them to a ``GroupSequencer``. For each job it looks up the idempotency keys the sequencer asks
about (``lookup_keys``), then asks for a ``Plan``: each new event's ``seq``, both trees' leaves
and node rows (RFC 9162's ``tree_nodes`` and Pangea's ``pangea_tree_nodes``), the tenant's new
head, and the job's answer in event order, with replays resolved. The writer writes the plan
with its own I/O and, only once that succeeded, ``accept``\\s it; a job whose writes failed is
simply not accepted, so the next job is sequenced after the head as the last good job left it.
At the end ``changed_heads`` lists the heads to store.

It is pure logic: no SQL, no connection, no clock. The rules it holds:

* a key already stored in the tenant, or claimed by an earlier accepted job of the group,
  replays that event (``replayed=True``); so does a later event of the same job with a key an
  earlier one of the job carries (replaying the first);
* keys are compared as the backend stores them (``stored_key``: PostgreSQL text cannot hold
  NUL), so a key the unique index would call a duplicate is a replay, never a conflict;
* the append guard (``Store.append_guard``, the never-fork guard) sees the head before any new
  event is sequenced after it; a job of replays only appends nothing and is not checked;
* a plan is accepted only on the head it was made from: accepting a stale plan would fork the
  tree, so it raises instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from trailkeep.errors import NotFoundError
from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.storage.base import Appended
from trailkeep.storage.tree import (
    LeafFunction,
    TreeHead,
    append_leaves,
    event_pangea_leaf,
    leaf_rows,
)

__all__ = ["GroupSequencer", "NodeRows", "Plan", "same_key", "wanted_keys"]

#: ``(tenant_id, level, idx, hash)`` rows for a tree's node table.
NodeRows = list[tuple[str, int, int, bytes]]


def same_key(key: str) -> str:
    """A backend that stores keys exactly as given (SQLite)."""
    return key


def wanted_keys(
    events: Iterable[NewEvent], stored_key: Callable[[str], str] = same_key
) -> set[str]:
    """The idempotency keys of ``events``, as stored."""
    return {stored_key(e.idempotency_key) for e in events if e.idempotency_key is not None}


@dataclass(slots=True)
class Plan:
    """What one job writes and answers; nothing of it happens until the backend writes it."""

    tenant_id: str
    #: The head the plan was made from, and the head once its events are appended.
    head: TreeHead
    new_head: TreeHead
    #: The job's answer, one per event in order (replays included).
    results: list[Appended]
    #: The new events: ``(index in the job's events, seq)``, seqs consecutive from
    #: ``head.size``.
    fresh: list[tuple[int, int]]
    #: Each tree's rows: the leaves (level 0, idx = seq), then the completed interior nodes.
    nodes: NodeRows
    pangea_nodes: NodeRows
    #: Keys (as stored) this job's new events claim.
    claimed: dict[str, StoredEvent]


class GroupSequencer:
    """Sequencing state for one transaction: each tenant's head and the keys claimed so far.

    Args:
        heads: the heads of the tenants the group appends to, as read under the write lock. A
            tenant missing here does not exist: its jobs fail with ``NotFoundError``.
        leaf_function: each new event's RFC 9162 leaf hash from its ``seq``, or None to keep
            no tree (both trees are then left as they are; the size still grows).
        check_append: the append guard, called with the head before new events are sequenced
            after it; what it raises fails the job.
        stored_key: an idempotency key as the backend stores (and compares) it.
    """

    __slots__ = ("_check_append", "_claimed", "_heads", "_leaf_function", "_start", "_stored_key")

    def __init__(
        self,
        heads: Mapping[str, TreeHead],
        leaf_function: LeafFunction | None,
        check_append: Callable[[str, TreeHead], None],
        stored_key: Callable[[str], str] = same_key,
    ) -> None:
        self._start = dict(heads)
        self._heads = dict(heads)
        self._leaf_function = leaf_function
        self._check_append = check_append
        self._stored_key = stored_key
        self._claimed: dict[str, dict[str, StoredEvent]] = {}

    def add_head(self, tenant_id: str, head: TreeHead) -> None:
        """A head read once the group had started (SQLite reads them as jobs come)."""
        if tenant_id not in self._start:
            self._start[tenant_id] = self._heads[tenant_id] = head

    def knows(self, tenant_id: str) -> bool:
        return tenant_id in self._heads

    def head(self, tenant_id: str) -> TreeHead:
        """The tenant's head as this group has left it so far."""
        head = self._heads.get(tenant_id)
        if head is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return head

    def lookup_keys(self, tenant_id: str, events: Iterable[NewEvent]) -> list[str]:
        """The keys (as stored) of ``events`` the backend must look up among stored events:
        those no accepted job of this group has claimed, sorted."""
        claimed = self._claimed.get(tenant_id, {})
        return sorted(k for k in wanted_keys(events, self._stored_key) if k not in claimed)

    def plan(
        self, tenant_id: str, events: Sequence[NewEvent], stored: Mapping[str, StoredEvent]
    ) -> Plan:
        """Sequence a job after the tenant's current head.

        ``stored``: events already stored in the tenant under the job's keys, by key as stored
        (at least those ``lookup_keys`` named; extra entries are harmless).
        """
        head = self.head(tenant_id)
        size = head.size
        stored_key = self._stored_key
        claimed = self._claimed.get(tenant_id, {})
        leaf_fn = self._leaf_function
        results: list[Appended] = []
        fresh: list[tuple[int, int]] = []
        leaves: list[bytes] = []
        mine: dict[str, StoredEvent] = {}  # each key's event, for this job
        new_keys: dict[str, StoredEvent] = {}
        for i, event in enumerate(events):
            key = event.idempotency_key
            if key is not None:
                key = stored_key(key)
                prior = mine.get(key) or claimed.get(key) or stored.get(key)
                if prior is not None:
                    mine[key] = prior
                    results.append(Appended(prior, replayed=True))
                    continue
            seq = size + len(fresh)
            fresh.append((i, seq))
            leaf = None
            if leaf_fn is not None:
                leaf = leaf_fn(tenant_id, seq, event)
                leaves.append(leaf)
            new = StoredEvent(tenant_id, seq, event.id, event.received_at, event.content, leaf)
            if key is not None:
                mine[key] = new_keys[key] = new
            results.append(Appended(new, replayed=False))
        if not fresh:
            return Plan(tenant_id, head, head, results, fresh, [], [], new_keys)
        self._check_append(tenant_id, head)
        if leaf_fn is None:
            grown = head.grown_without_tree(len(fresh))
            return Plan(tenant_id, head, grown, results, fresh, [], [], new_keys)
        grown, nodes, pangea_nodes = self._trees(tenant_id, head, events, fresh, leaves)
        return Plan(tenant_id, head, grown, results, fresh, nodes, pangea_nodes, new_keys)

    def _trees(
        self,
        tenant_id: str,
        head: TreeHead,
        events: Sequence[NewEvent],
        fresh: list[tuple[int, int]],
        leaves: list[bytes],
    ) -> tuple[TreeHead, NodeRows, NodeRows]:
        """Both trees grown by the new events (``leaves``: their RFC 9162 leaves): the new
        head and each tree's node rows. (A benchmark measuring one tree alone overrides it.)"""
        second = [event_pangea_leaf(events[i]) for i, _ in fresh]
        grown, nodes, second_nodes = append_leaves(head, leaves, second)
        return (
            grown,
            leaf_rows(tenant_id, head.size, leaves, nodes),
            leaf_rows(tenant_id, head.size, second, second_nodes),
        )

    def accept(self, plan: Plan) -> None:
        """The plan's writes succeeded: move the head and remember the keys it claimed."""
        if self._heads.get(plan.tenant_id) is not plan.head:
            raise RuntimeError(
                f"a plan for tenant {plan.tenant_id!r} made from a head this group has moved"
                " since: accepting it would fork the tree"
            )
        if plan.fresh:
            self._heads[plan.tenant_id] = plan.new_head
        if plan.claimed:
            self._claimed.setdefault(plan.tenant_id, {}).update(plan.claimed)

    def changed_heads(self) -> list[tuple[str, TreeHead]]:
        """The heads this group moved, to store with its commit."""
        return [(t, h) for t, h in self._heads.items() if h is not self._start[t]]

"""A tenant's tree head as storage keeps it, and appending leaves to it inside a transaction.

Every tenant's sequence carries two trees (DESIGN §3): the RFC 9162 tree our checkpoints sign,
whose nodes are in ``tree_nodes``, and Pangea's tree (``model.pangea`` leaves, unprefixed
nodes), whose nodes are in ``pangea_tree_nodes``, a table of the same shape. Both are appended
in the same transaction, so they always cover the same ``[0, size)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from trailkeep.merkle import PANGEA_LEGACY, RFC9162, CompactRange, NodeRow
from trailkeep.model.event import NewEvent
from trailkeep.model.pangea import pangea_leaf

__all__ = [
    "EVENT_LEAF",
    "NODE_TABLES",
    "LeafFunction",
    "TreeHead",
    "TreeName",
    "append_leaves",
    "event_pangea_leaf",
    "leaf_rows",
]

#: An ``events`` row's leaf hash, read from the tree (a column expression for any SELECT on
#: ``events``): leaves are level 0 of ``tree_nodes`` (idx = seq), apart from the content, so
#: that retention can delete the content and keep the leaf.
EVENT_LEAF: Final = (
    "(SELECT hash FROM tree_nodes WHERE tree_nodes.tenant_id = events.tenant_id"
    " AND tree_nodes.level = 0 AND tree_nodes.idx = events.seq)"
)

#: Which of a tenant's two trees a read is about.
TreeName = Literal["rfc9162", "pangea"]
#: The table holding each tree's leaves (level 0) and complete interior nodes.
NODE_TABLES: Final[dict[TreeName, str]] = {
    "rfc9162": "tree_nodes",
    "pangea": "pangea_tree_nodes",
}

#: Computes the leaf hash of an event once its place in the log is known.
LeafFunction = Callable[[str, int, NewEvent], bytes]


def event_pangea_leaf(event: NewEvent) -> bytes:
    """An event's leaf in Pangea's tree: computed before the writer when it can be."""
    if event.pangea_leaf is not None:
        return event.pangea_leaf
    return pangea_leaf(event.content, event.received_at)


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The log size and the hashes of the complete subtrees that cover ``[0, size)``.

    The frontier lists the subtrees from the largest (leftmost) to the smallest; it is all
    that is needed to append and to compute the root, and it is O(log size) in length.
    ``pangea`` is the same for Pangea's tree over the same positions.
    """

    size: int
    frontier: tuple[bytes, ...]
    pangea: tuple[bytes, ...] = ()

    def pack(self) -> bytes:
        return b"".join(self.frontier)

    def pack_pangea(self) -> bytes:
        return b"".join(self.pangea)

    @classmethod
    def unpack(cls, size: int, packed: bytes, pangea: bytes = b"") -> TreeHead:
        return cls(size, _split(packed), _split(pangea))

    def grown_without_tree(self, count: int) -> TreeHead:
        return TreeHead(self.size + count, self.frontier, self.pangea)

    def root(self) -> bytes:
        """The RFC 9162 root hash of the tree of ``size`` leaves."""
        return CompactRange.from_subtrees(RFC9162, self.size, self.frontier).root()

    def pangea_root(self) -> bytes:
        """The root hash of Pangea's tree of ``size`` leaves."""
        return CompactRange.from_subtrees(PANGEA_LEGACY, self.size, self.pangea).root()


def _split(packed: bytes) -> tuple[bytes, ...]:
    return tuple(bytes(packed[i : i + 32]) for i in range(0, len(packed), 32))


def append_leaves(
    head: TreeHead, leaves: Sequence[bytes], pangea_leaves: Sequence[bytes]
) -> tuple[TreeHead, list[NodeRow], list[NodeRow]]:
    """Append the leaves of both trees; return the new head and each tree's completed nodes.

    Interior nodes are ``(level, index, hash)`` with level >= 1: the node covering leaves
    ``[index * 2**level, (index + 1) * 2**level)``. Storing them all lets any inclusion or
    consistency proof be served with O(log n) reads.
    """
    if len(leaves) != len(pangea_leaves):
        raise ValueError(f"{len(leaves)} leaves but {len(pangea_leaves)} Pangea leaves")
    compact = CompactRange.from_subtrees(RFC9162, head.size, head.frontier)
    nodes = compact.extend(leaves)
    second = CompactRange.from_subtrees(PANGEA_LEGACY, head.size, head.pangea)
    second_nodes = second.extend(pangea_leaves)
    return TreeHead(compact.size, compact.hashes, second.hashes), nodes, second_nodes


def leaf_rows(
    tenant_id: str, first_seq: int, leaves: Sequence[bytes], nodes: Sequence[NodeRow]
) -> list[tuple[str, int, int, bytes]]:
    """The node-table rows of an append: its leaves (level 0, idx = seq), then ``nodes``."""
    rows = [(tenant_id, 0, first_seq + i, leaf) for i, leaf in enumerate(leaves)]
    rows.extend((tenant_id, level, idx, h) for level, idx, h in nodes)
    return rows

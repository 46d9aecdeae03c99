"""A tenant's tree head as storage keeps it, and appending leaves to it inside a transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from trailkeep.merkle import RFC9162, CompactRange, NodeRow
from trailkeep.model.event import NewEvent

__all__ = ["EVENT_LEAF", "LeafFunction", "TreeHead", "append_leaves", "leaf_rows"]

#: An ``events`` row's leaf hash, read from the tree (a column expression for any SELECT on
#: ``events``): leaves are level 0 of ``tree_nodes`` (idx = seq), apart from the content, so
#: that retention can delete the content and keep the leaf.
EVENT_LEAF: Final = (
    "(SELECT hash FROM tree_nodes WHERE tree_nodes.tenant_id = events.tenant_id"
    " AND tree_nodes.level = 0 AND tree_nodes.idx = events.seq)"
)

#: Computes the leaf hash of an event once its place in the log is known.
LeafFunction = Callable[[str, int, NewEvent], bytes]


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The log size and the hashes of the complete subtrees that cover ``[0, size)``.

    The frontier lists the subtrees from the largest (leftmost) to the smallest; it is all
    that is needed to append and to compute the root, and it is O(log size) in length.
    """

    size: int
    frontier: tuple[bytes, ...]

    def pack(self) -> bytes:
        return b"".join(self.frontier)

    @classmethod
    def unpack(cls, size: int, packed: bytes) -> TreeHead:
        return cls(size, tuple(packed[i : i + 32] for i in range(0, len(packed), 32)))

    def grown_without_tree(self, count: int) -> TreeHead:
        return TreeHead(self.size + count, self.frontier)

    def root(self) -> bytes:
        """The RFC 9162 root hash of the tree of ``size`` leaves."""
        return CompactRange.from_subtrees(RFC9162, self.size, self.frontier).root()


def append_leaves(head: TreeHead, leaves: Sequence[bytes]) -> tuple[TreeHead, list[NodeRow]]:
    """Append leaf hashes; return the new head and every completed interior node.

    Interior nodes are ``(level, index, hash)`` with level >= 1: the node covering leaves
    ``[index * 2**level, (index + 1) * 2**level)``. Storing them all lets any inclusion or
    consistency proof be served with O(log n) reads.
    """
    compact = CompactRange.from_subtrees(RFC9162, head.size, head.frontier)
    nodes = compact.extend(leaves)
    return TreeHead(compact.size, compact.hashes), nodes


def leaf_rows(
    tenant_id: str, first_seq: int, leaves: Sequence[bytes], nodes: Sequence[NodeRow]
) -> list[tuple[str, int, int, bytes]]:
    """The ``tree_nodes`` rows of an append: its leaves (level 0, idx = seq), then ``nodes``."""
    rows = [(tenant_id, 0, first_seq + i, leaf) for i, leaf in enumerate(leaves)]
    rows.extend((tenant_id, level, idx, h) for level, idx, h in nodes)
    return rows

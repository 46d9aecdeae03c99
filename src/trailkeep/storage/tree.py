"""A tenant's tree head as storage keeps it, and appending leaves to it inside a transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trailkeep.model.event import NewEvent

__all__ = ["LeafFunction", "TreeHead", "append_leaves"]

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


def append_leaves(
    head: TreeHead, leaves: Sequence[bytes]
) -> tuple[TreeHead, list[tuple[int, int, bytes]]]:
    """Append leaf hashes; return the new head and every completed interior node.

    Interior nodes are ``(level, index, hash)`` with level >= 1: the node covering leaves
    ``[index * 2**level, (index + 1) * 2**level)``. Storing them all lets any inclusion or
    consistency proof be served with O(log n) reads.
    """
    stack = list(head.frontier)
    size = head.size
    nodes: list[tuple[int, int, bytes]] = []
    sha256 = hashlib.sha256
    for leaf in leaves:
        h = leaf
        n = size
        level = 0
        while n & 1:
            h = sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
            level += 1
            nodes.append((level, n, h))
        stack.append(h)
        size += 1
    return TreeHead(size, tuple(stack)), nodes

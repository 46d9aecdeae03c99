"""Node ids of a log Merkle tree, and the decomposition of a leaf range into complete subtrees.

A ``NodeID(level, index)`` names the root of a *complete* (perfect) subtree: it covers the
``2**level`` leaves ``[index * 2**level, (index + 1) * 2**level)``. Its hash never changes once
the log holds all of those leaves, which is what lets a store persist each node once and serve
any proof from stored nodes alone. Nodes on the right border of a tree whose size is not a power
of two are *ephemeral* (their hash depends on the size); they never get a ``NodeID`` here: they
are recomputed from the complete subtrees under them (see ``proof.Nodes.rehash``).

Example, with nodes written ``level.index``, in a tree of 3 leaves::

        2.0 (ephemeral: covers [0, 3), not a NodeID)
       /   \\
     1.0    \\
    /   \\    \\
  0.0   0.1   0.2
"""

from __future__ import annotations

from dataclasses import dataclass

from trailkeep.errors import InvalidInputError

__all__ = ["NodeID", "range_nodes", "subtree_ids"]


@dataclass(frozen=True, slots=True, order=True)
class NodeID:
    """The root of the complete subtree of ``2**level`` leaves starting at ``index * 2**level``.

    Attributes:
        level: height above the leaves; leaves are level 0.
        index: position among the nodes of the same level, from the left, starting at 0.
    """

    level: int
    index: int

    def __post_init__(self) -> None:
        if self.level < 0 or self.index < 0:
            raise InvalidInputError(f"node id needs level >= 0 and index >= 0, got {self}")

    def parent(self) -> NodeID:
        """The node one level up whose subtree contains this one."""
        return NodeID(self.level + 1, self.index >> 1)

    def sibling(self) -> NodeID:
        """The other child of this node's parent."""
        return NodeID(self.level, self.index ^ 1)

    def coverage(self) -> tuple[int, int]:
        """The leaves under this node, as a half-open range ``(begin, end)``."""
        return self.index << self.level, (self.index + 1) << self.level


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """The fewest complete subtrees that exactly cover the leaves ``[begin, end)``.

    The subtrees come left to right. Sizes first grow (along the left border of the range) and
    then shrink (along its right border); for ``begin == 0`` they only shrink, one subtree per set
    bit of ``end``. This is transparency-dev's ``compact.RangeNodes``.

    Args:
        begin: first leaf, inclusive.
        end: last leaf, exclusive; requires ``0 <= begin <= end``.

    Raises:
        InvalidInputError: when ``0 <= begin <= end`` does not hold.
    """
    if not 0 <= begin <= end:
        raise InvalidInputError(f"range needs 0 <= begin <= end, got [{begin}, {end})")
    if begin == 0:
        left, right = 0, end
    else:
        # Below the level where the paths to leaves begin-1 and end part, zero bits of begin-1
        # are complete subtrees on the range's left border, one bits of end on its right border.
        before = begin - 1
        mask = (1 << ((before ^ end).bit_length() - 1)) - 1
        left, right = ~before & mask, end & mask
    ids: list[NodeID] = []
    pos = begin
    while left:
        level = (left & -left).bit_length() - 1
        ids.append(NodeID(level, pos >> level))
        pos += 1 << level
        left ^= 1 << level
    while right:
        level = right.bit_length() - 1
        ids.append(NodeID(level, pos >> level))
        pos += 1 << level
        right ^= 1 << level
    return ids


def subtree_ids(size: int) -> list[NodeID]:
    """The complete subtrees that decompose a tree of ``size`` leaves, left to right.

    There is one per set bit of ``size``, largest first; folding their hashes from the right
    gives the root. A compact range holds exactly these hashes, so a store that persists every
    complete node can rebuild the range, or compute any past root, with ``popcount(size)`` reads.

    Raises:
        InvalidInputError: when ``size`` is negative.
    """
    return range_nodes(0, size)

"""Proof shapes: which stored nodes make up an RFC 9162 inclusion or consistency proof.

Like transparency-dev/merkle's ``proof`` package, these functions do no hashing and no I/O: they
turn ``(index, size)`` or ``(size1, size2)`` into a ``Nodes`` value listing the ids of complete
subtrees the caller must fetch. Every id is a complete subtree of the tree of the requested size
(``(index + 1) * 2**level <= size``), so a store that persisted the leaves and the rows returned
by ``CompactRange.append`` has all of them. At most one proof element is an *ephemeral* node on
the tree's right border; ``Nodes.rehash`` rebuilds it from the complete subtrees under it::

    nodes = inclusion(index, size)
    proof = nodes.rehash([store.node_hash(i) for i in nodes.ids], RFC9162)
    verify_inclusion(RFC9162, index, size, leaf_hash, proof, root)

A proof needs ``O(log n)`` reads: at most about ``2 * log2(size)`` ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from trailkeep.errors import InvalidInputError
from trailkeep.merkle.hasher import LogHasher
from trailkeep.merkle.nodes import NodeID, range_nodes

__all__ = ["Nodes", "consistency", "inclusion"]


@dataclass(frozen=True, slots=True)
class Nodes:
    """The complete subtrees to fetch for one proof, and how to fold them into the proof.

    Attributes:
        ids: nodes to fetch, in proof order (lowest level first).
        begin: ``ids[begin:end]`` are the complete subtrees under the ephemeral node, smallest
            (rightmost) first; they collapse into one proof element. Empty when ``begin == end``.
        end: see ``begin``.
        ephem: the ephemeral node those ids rebuild, or ``None`` when the proof has none. It is
            not a complete subtree of the tree, so it must not be looked up in a store; it is
            given so a caller can cache or display it.
    """

    ids: tuple[NodeID, ...]
    begin: int = 0
    end: int = 0
    ephem: NodeID | None = None

    def rehash(self, hashes: Sequence[bytes], hasher: LogHasher) -> list[bytes]:
        """The RFC 9162 proof from the fetched hashes of ``ids``, in the same order.

        Args:
            hashes: ``hashes[i]`` is the stored hash of ``ids[i]``.
            hasher: the tree's hasher.

        Raises:
            InvalidInputError: the number of hashes or the length of one does not match.
        """
        if len(hashes) != len(self.ids):
            raise InvalidInputError(f"got {len(hashes)} hashes for {len(self.ids)} node ids")
        for position, value in enumerate(hashes):
            if len(value) != hasher.size:
                raise InvalidInputError(
                    f"hash of {self.ids[position]} must be {hasher.size} bytes, got {len(value)}"
                )
        if self.begin == self.end:
            return list(hashes)
        ephemeral = hashes[self.begin]
        for left in hashes[self.begin + 1 : self.end]:
            ephemeral = hasher.hash_children(left, ephemeral)
        return [*hashes[: self.begin], ephemeral, *hashes[self.end :]]

    def _skip_first(self) -> Nodes:
        # The first id is the node the proof is about; the verifier already holds its hash.
        if self.begin < self.end:
            return replace(self, ids=self.ids[1:], begin=self.begin - 1, end=self.end - 1)
        return replace(self, ids=self.ids[1:])


def inclusion(index: int, size: int) -> Nodes:
    """The nodes of the inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    Rehashed, they give RFC 9162 §2.1.3.1 ``PATH(index, D[0:size])``.

    Args:
        index: the leaf; requires ``0 <= index < size``.
        size: the tree size.

    Raises:
        InvalidInputError: ``0 <= index < size`` does not hold.
    """
    if not 0 <= index < size:
        raise InvalidInputError(
            f"inclusion proof needs 0 <= index < size, got index {index} and size {size}"
        )
    return _nodes(index, 0, size)._skip_first()


def consistency(size1: int, size2: int) -> Nodes:
    """The nodes of the consistency proof from the tree of ``size1`` leaves to ``size2``.

    Rehashed, they give RFC 9162 §2.1.4.1 ``PROOF(size1, D[0:size2])``. The proof is empty when
    ``size1 == size2`` (nothing to prove) and when ``size1 == 0`` (the empty tree is a prefix of
    every tree; RFC 9162 leaves that case undefined, and ``verify_consistency`` accepts it).

    Args:
        size1: the older size; requires ``0 <= size1 <= size2``.
        size2: the newer size.

    Raises:
        InvalidInputError: ``0 <= size1 <= size2`` does not hold.
    """
    if not 0 <= size1 <= size2:
        raise InvalidInputError(
            f"consistency proof needs 0 <= size1 <= size2, got size1 {size1} and size2 {size2}"
        )
    if size1 in (0, size2):
        return Nodes(ids=())
    # The proof is the inclusion proof of the largest complete subtree ending at size1, i.e.
    # the subtree of 2**level leaves where level is the number of trailing zeros of size1.
    level = (size1 & -size1).bit_length() - 1
    nodes = _nodes((size1 - 1) >> level, level, size2)
    if size1 & (size1 - 1) == 0:
        # size1 is a power of two: that subtree is the whole old tree, whose root the verifier
        # holds already, so RFC 9162 omits it.
        return nodes._skip_first()
    return nodes


def _nodes(index: int, level: int, size: int) -> Nodes:
    """Ids proving node ``(level, index)`` is in the tree of ``size`` leaves, the node first.

    The path from that node up to the root runs through complete siblings until the *fork*,
    where it parts from the path to the tree's right border; above the fork, the sibling on the
    right is the ephemeral node (made of the complete subtrees covering ``[end, size)``), and the
    siblings on the left are the complete subtrees covering ``[0, begin)``.
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork = NodeID(level + inner, index >> inner)
    begin, end = fork.coverage()

    node = NodeID(level, index)
    ids = [node]
    while node.level < fork.level:
        ids.append(node.sibling())
        node = node.parent()
    ephem_begin = len(ids)
    ids.extend(reversed(range_nodes(end, size)))  # lowest first, so rehash folds leftwards
    ephem_end = len(ids)
    ids.extend(reversed(range_nodes(0, begin)))  # the left siblings, lowest first
    if ephem_begin == ephem_end:
        return Nodes(ids=tuple(ids))
    return Nodes(ids=tuple(ids), begin=ephem_begin, end=ephem_end, ephem=fork.sibling())

"""The compact range (Merkle frontier) that appends leaves and reports every completed subtree.

A log of ``size`` leaves is summarised by the hashes of its ``popcount(size)`` complete subtrees
(``nodes.subtree_ids(size)``): enough to append the next leaf and to compute the root, in
O(log n) memory. Appending leaf ``size`` completes one new interior node per trailing one bit of
``size``; ``CompactRange.append`` returns exactly those as ``(level, index, hash)`` rows, so a
store that writes them, plus the leaf hash itself at ``(0, size)``, holds every complete node of
the tree and can serve any proof with ``proof.inclusion``/``proof.consistency``.

Rows are plain tuples rather than ``NodeID`` objects because this is the ingest hot path and they
go straight into ``executemany``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeAlias

from trailkeep.errors import InvalidInputError
from trailkeep.merkle.hasher import LogHasher
from trailkeep.merkle.nodes import NodeID, subtree_ids

__all__ = ["CompactRange", "NodeRow", "root_from_subtrees"]

NodeRow: TypeAlias = tuple[int, int, bytes]
"""A newly complete interior node: ``(level, index, hash)``, with ``level >= 1``."""


class CompactRange:
    """The frontier of the tree ``[0, size)``: what is needed to append and to compute the root.

    Mutable on purpose, since it is the sequencer's running state; ``copy`` it before a batch
    that may be rolled back. Not thread-safe: one writer owns it, like the tenant's sequence.
    """

    __slots__ = ("_hash_children", "_hash_size", "_hasher", "_hashes", "_size")

    def __init__(self, hasher: LogHasher) -> None:
        """Start an empty tree; use ``from_subtrees`` to resume a stored one."""
        self._hasher = hasher
        self._hash_children = hasher.hash_children
        self._hash_size = hasher.size
        self._hashes: list[bytes] = []
        self._size = 0

    @classmethod
    def from_subtrees(cls, hasher: LogHasher, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Resume a tree of ``size`` leaves from the hashes of ``subtree_ids(size)``.

        Args:
            hasher: the tree's hasher.
            size: number of leaves already in the tree.
            hashes: hashes of ``subtree_ids(size)``, in that order (left to right).

        Raises:
            InvalidInputError: the count or a length of the hashes does not fit ``size``.
        """
        if size < 0:
            raise InvalidInputError(f"tree size must be >= 0, got {size}")
        want = size.bit_count()
        if len(hashes) != want:
            raise InvalidInputError(
                f"a tree of size {size} has {want} complete subtrees, got {len(hashes)} hashes"
            )
        for position, value in enumerate(hashes):
            _check_hash(hasher, value, f"subtree hash [{position}]")
        cr = cls(hasher)
        cr._hashes = list(hashes)
        cr._size = size
        return cr

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Hashes of ``subtree_ids(size)``, left to right: what to persist to resume later."""
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        """An independent range with the same state, to try a batch that may be abandoned."""
        cr = CompactRange(self._hasher)
        cr._hashes = self._hashes.copy()
        cr._size = self._size
        return cr

    def append(self, leaf_hash: bytes) -> list[NodeRow]:
        """Append one leaf and return the interior nodes it completes, lowest level first.

        The new leaf is leaf ``size`` (before the call), i.e. node ``(0, size)``; the store
        keeps it with its event. The rows returned are every node above it that just became
        complete, one per trailing one bit of the old size, so on average one per append.

        Args:
            leaf_hash: the leaf's hash (``hasher.hash_leaf(leaf_input)``), not its input.

        Raises:
            InvalidInputError: ``leaf_hash`` is not ``hasher.size`` bytes long.
        """
        if len(leaf_hash) != self._hash_size:
            _check_hash(self._hasher, leaf_hash, "leaf hash")
        index = self._size
        hashes = self._hashes
        hash_children = self._hash_children
        rows: list[NodeRow] = []
        node = leaf_hash
        level = 0
        while index & 1:
            node = hash_children(hashes.pop(), node)
            index >>= 1
            level += 1
            rows.append((level, index, node))
        hashes.append(node)
        self._size += 1
        return rows

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[NodeRow]:
        """Append many leaves in order; return every node they complete, in completion order.

        All or nothing: every hash is checked before the first is appended, so a bad one in a
        batch leaves the range as it was instead of half-grown with its rows lost.

        Raises:
            InvalidInputError: a leaf hash is not ``hasher.size`` bytes long.
        """
        leaves = list(leaf_hashes)
        for position, leaf_hash in enumerate(leaves):
            if len(leaf_hash) != self._hash_size:
                _check_hash(self._hasher, leaf_hash, f"leaf hash [{position}]")
        # The loop of ``append``, inlined: this is the batch ingest path.
        hashes = self._hashes
        hash_children = self._hash_children
        rows: list[NodeRow] = []
        size = self._size
        for leaf_hash in leaves:
            node = leaf_hash
            index = size
            level = 0
            while index & 1:
                node = hash_children(hashes.pop(), node)
                index >>= 1
                level += 1
                rows.append((level, index, node))
            hashes.append(node)
            size += 1
        self._size = size
        return rows

    def absorb(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaves in order without reporting the nodes they complete.

        ``extend`` for those who need only the root in the end (a verifier replaying a log):
        it skips building a row per completed node. All or nothing, like ``extend``.

        Raises:
            InvalidInputError: a leaf hash is not ``hasher.size`` bytes long.
        """
        leaves = leaf_hashes if isinstance(leaf_hashes, list) else list(leaf_hashes)
        size_ = self._hash_size
        for position, leaf_hash in enumerate(leaves):
            if len(leaf_hash) != size_:
                _check_hash(self._hasher, leaf_hash, f"leaf hash [{position}]")
        hashes = self._hashes
        pop, push = hashes.pop, hashes.append
        hash_children = self._hash_children
        size = self._size
        for node in leaves:
            index = size
            while index & 1:
                node = hash_children(pop(), node)
                index >>= 1
            push(node)
            size += 1
        self._size = size

    def root(self) -> bytes:
        """The root hash of the tree ``[0, size)``: the frontier folded from the right."""
        hashes = self._hashes
        if not hashes:
            return self._hasher.empty_root()
        hash_children = self._hash_children
        node = hashes[-1]
        for left in reversed(hashes[:-1]):
            node = hash_children(left, node)
        return node

    def __repr__(self) -> str:
        return f"CompactRange(hasher={self._hasher!r}, size={self._size})"


def root_from_subtrees(hasher: LogHasher, size: int, get: Callable[[NodeID], bytes]) -> bytes:
    """The root of the tree of ``size`` leaves, from the hashes of its complete subtrees.

    Reads ``popcount(size)`` stored nodes (``subtree_ids(size)``) and folds them from the right,
    the way RFC 9162's ``MTH`` splits a tree. A store uses it to answer "root at size N" for any
    past N without replaying leaves. To batch the reads, fetch ``subtree_ids(size)`` first and
    pass ``dict(zip(ids, hashes)).__getitem__``.

    Args:
        hasher: the tree's hasher.
        size: the tree size; requires ``size >= 0``.
        get: returns the stored hash of a complete node.

    Raises:
        InvalidInputError: ``size`` is negative, or ``get`` returns a hash of the wrong length.
    """
    if size < 0:
        raise InvalidInputError(f"tree size must be >= 0, got {size}")
    ids = subtree_ids(size)
    if not ids:
        return hasher.empty_root()
    node = _check_hash(hasher, get(ids[-1]), f"hash of {ids[-1]}")
    for node_id in reversed(ids[:-1]):
        node = hasher.hash_children(_check_hash(hasher, get(node_id), f"hash of {node_id}"), node)
    return node


def _check_hash(hasher: LogHasher, value: bytes, what: str) -> bytes:
    if len(value) != hasher.size:
        raise InvalidInputError(f"{what} must be {hasher.size} bytes, got {len(value)}")
    return value

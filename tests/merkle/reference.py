"""A naive recursive Merkle tree written straight from RFC 9162 §2.1, to check the real code.

``MTH``, ``PATH`` and ``PROOF``/``SUBPROOF`` are transcribed from §2.1.1, §2.1.3.1 and §2.1.4.1
with the same case split (``k`` is the largest power of two smaller than ``n``), on ranges
``[start, end)`` of one shared list of leaves so that one tree serves every size: ``MTH`` of a
range depends only on the leaves in it. Subtree hashes are memoised, which changes nothing but
speed. Nothing here is shared with ``trailkeep.merkle`` except the hasher.
"""

from __future__ import annotations

from collections.abc import Sequence

from trailkeep.merkle.hasher import LogHasher


def leaf_data(i: int) -> bytes:
    """Cheap, distinct leaf input for leaf ``i``."""
    return b"leaf-" + i.to_bytes(8, "big")


def split_point(n: int) -> int:
    """RFC 9162's ``k``: the largest power of two smaller than ``n`` (requires ``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


class ReferenceTree:
    """RFC 9162 §2.1 over a fixed list of leaf inputs; ``size`` arguments take a prefix."""

    def __init__(self, hasher: LogHasher, leaves: Sequence[bytes]) -> None:
        self.hasher = hasher
        self.leaf_hashes = [hasher.hash_leaf(data) for data in leaves]
        self._mth: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self.leaf_hashes)

    def mth(self, start: int, end: int) -> bytes:
        """``MTH(D[start:end])``."""
        assert 0 <= start <= end <= len(self)
        n = end - start
        if n == 0:
            return self.hasher.empty_root()
        if n == 1:
            return self.leaf_hashes[start]
        cached = self._mth.get((start, end))
        if cached is None:
            k = split_point(n)
            cached = self.hasher.hash_children(self.mth(start, start + k), self.mth(start + k, end))
            self._mth[(start, end)] = cached
        return cached

    def root(self, size: int) -> bytes:
        """``MTH(D[0:size])``."""
        return self.mth(0, size)

    def path(self, m: int, size: int) -> list[bytes]:
        """``PATH(m, D[0:size])``, the inclusion proof of leaf ``m``."""
        assert 0 <= m < size
        return self._path(m, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = split_point(n)
        if m < k:
            return [*self._path(m, start, start + k), self.mth(start + k, end)]
        return [*self._path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, size: int) -> list[bytes]:
        """``PROOF(m, D[0:size])`` for ``0 < m < size``; empty for ``m in (0, size)``."""
        assert 0 <= m <= size
        if m in (0, size):
            return []
        return self._subproof(m, 0, size, True)

    def _subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = split_point(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.mth(start, start + k)]


def path_sides(m: int, n: int) -> str:
    """Which side each ``PATH(m, D[n])`` element joins on (``L``/``R``), lowest first.

    Two claims with the same sides make any RFC 9162 verifier do the same hashing, so no proof
    can tell them apart: the tree size is bound only through the root a checkpoint signs.
    """
    if n == 1:
        return ""
    k = split_point(n)
    return path_sides(m, k) + "R" if m < k else path_sides(m - k, n - k) + "L"


def proof_shape(m: int, n: int) -> str:
    """The shape of ``PROOF(m, D[n])`` for ``0 < m < n``: ``S`` for the old subtree seed, then
    ``L``/``R`` for each sibling (``L`` ones are in the old tree too), lowest first."""

    def sub(m: int, n: int, b: bool) -> str:
        if m == n:
            return "" if b else "S"
        k = split_point(n)
        return sub(m, k, b) + "R" if m <= k else sub(m - k, n - k, False) + "L"

    return sub(m, n, True)

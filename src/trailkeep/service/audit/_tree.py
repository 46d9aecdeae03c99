"""The stored tree against the stored leaves: interior nodes, roots at checkpoint sizes, head.

The tree is rebuilt from the *stored* leaf hashes (whether each matches its content is the
event check's question), so a finding here is about the tree rows themselves: an altered node
mismatches alone, since its parent is recomputed from the leaves, not from it. A leaf the event
check could not trust (row missing or altered) *taints* every node and root above it; a tainted
mismatch is that event's consequence and is not reported again.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from hashlib import sha256 as _node
from typing import Final

from trailkeep.merkle import RFC9162, CompactRange, LogHasher
from trailkeep.model import _native
from trailkeep.storage.base import Store

from ._report import Problem

__all__ = ["TreeChecker", "aligned", "climb", "join_subtree"]

_ZERO = bytes(32)
#: RFC 9162's interior node is ``SHA-256(0x01 || left || right)`` (``RFC9162.hash_children``),
#: written inline for the bulk of a chunk's nodes.
_PREFIX: Final = b"\x01"
_SIZE: Final = 32


def _climb_py(leaves: bytes, prefix: bool) -> list[bytes]:
    """Every level of the subtree over ``leaves`` (2**k hashes concatenated), level 1 up to
    its root, each level's nodes concatenated (``_fastleaf.climb`` in C)."""
    head = _PREFIX if prefix else b""
    levels, row = [], leaves
    while len(row) > _SIZE:
        row = b"".join(
            [_node(head + row[i : i + 2 * _SIZE]).digest() for i in range(0, len(row), 2 * _SIZE)]
        )
        levels.append(row)
    return levels


climb: Final = _native.climb or _climb_py


def aligned(start: int, end: int) -> bool:
    """Whether ``[start, end)`` is one complete subtree (2**k leaves from a multiple of 2**k)."""
    width = end - start
    return width > 0 and width & (width - 1) == 0 and start % width == 0


def join_subtree(
    tree: CompactRange, hasher: LogHasher, root: bytes, level: int
) -> tuple[CompactRange, list[tuple[int, int, bytes]]]:
    """The range ``tree`` extended by one aligned subtree of ``2**level`` leaves whose root is
    ``root`` (``CompactRange.append``'s loop, a subtree at a time); with the nodes it
    completes above that subtree, lowest first."""
    frontier = list(tree.hashes)
    index = tree.size >> level
    size = tree.size + (1 << level)
    nodes: list[tuple[int, int, bytes]] = []
    node = root
    while index & 1:
        node = hasher.hash_children(frontier.pop(), node)
        index >>= 1
        level += 1
        nodes.append((level, index, node))
    frontier.append(node)
    return CompactRange.from_subtrees(hasher, size, frontier), nodes


class TreeChecker:
    """Appends a tenant's stored leaves chunk by chunk and checks what they complete.

    Args:
        store: the store audited.
        tenant_id: its tenant.
        sizes: tree sizes whose root is wanted (checkpoints, the head).
        problems: where findings are appended.
    """

    def __init__(
        self, store: Store, tenant_id: str, sizes: Iterable[int], problems: list[Problem]
    ) -> None:
        self._store = store
        self._tenant = tenant_id
        self._sizes = sorted(set(sizes))
        self._problems = problems
        self._range = CompactRange(RFC9162)
        self._tainted: list[int] = []
        #: size -> (root recomputed from the stored leaves, whether a tainted leaf is below)
        self.roots: dict[int, tuple[bytes, bool]] = {}
        if 0 in self._sizes:
            self.roots[0] = (self._range.root(), False)

    @property
    def size(self) -> int:
        return self._range.size

    def tainted_below(self, size: int) -> bool:
        """Whether a leaf under ``size`` could not be trusted."""
        return bool(self._tainted) and self._tainted[0] < size

    def _tainted_in(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._tainted, start)
        return i < len(self._tainted) and self._tainted[i] < end

    def append(self, start: int, end: int, leaves: list[bytes | None], tainted: list[int]) -> None:
        """Append leaves ``[start, end)`` (None for a missing one: zero, tainted); check the
        nodes they complete."""
        assert start == self._range.size, (start, self._range.size)
        missing = (
            [start + i for i, leaf in enumerate(leaves) if leaf is None] if None in leaves else []
        )
        if missing:
            self._tainted.extend(sorted({*tainted, *missing}))
            hashes = [_ZERO if leaf is None else leaf for leaf in leaves]
        else:
            self._tainted.extend(tainted)
            hashes = leaves  # type: ignore[assignment]  # no None in it
        lo = bisect.bisect_right(self._sizes, start)
        hi = bisect.bisect_right(self._sizes, end)
        if aligned(start, end) and self._sizes[lo:hi] in ([], [end]):
            leaves_ = b"".join(hashes)
            if len(leaves_) == _SIZE * (end - start):  # else the per-node path says why
                levels = climb(leaves_, True)
                root = levels[-1] if levels else leaves_
                self._range, above = join_subtree(self._range, RFC9162, root, len(levels))
                if hi > lo:
                    self.roots[end] = (self._range.root(), self.tainted_below(end))
                self._check_levels(start, levels, above)
                return
        nodes: list[tuple[int, int, bytes]] = []
        at = start
        for size in self._sizes[lo:hi]:  # stop at each wanted size for its root
            nodes += self._range.extend(hashes[at - start : size - start])
            at = size
            self.roots[size] = (self._range.root(), self.tainted_below(size))
        nodes += self._range.extend(hashes[at - start :])
        self._check_nodes(start, end, nodes)

    def _check_levels(
        self, start: int, levels: list[bytes], above: list[tuple[int, int, bytes]]
    ) -> None:
        """Compare an aligned subtree's recomputed levels (``climb``) with the stored ones, a
        level in one go; node by node only where one differs, and for the nodes ``above``."""
        closer = list(above)
        for level, row in enumerate(levels, 1):
            first, count = start >> level, len(row) // _SIZE
            if self._store.audit_node_hashes(self._tenant, level, first, first + count) != row:
                closer += [
                    (level, first + i, row[i * _SIZE : (i + 1) * _SIZE]) for i in range(count)
                ]
        if not closer:
            return
        stored: list[tuple[int, int, bytes]] = []
        spans: dict[int, list[int]] = {}
        for level, index, _ in closer:
            spans.setdefault(level, []).append(index)
        for level, indexes in sorted(spans.items()):
            stored += self._store.audit_nodes(self._tenant, level, min(indexes), max(indexes) + 1)
        self._compare(closer, stored)

    def _check_nodes(self, start: int, end: int, nodes: list[tuple[int, int, bytes]]) -> None:
        """Compare in one go (lists of rows in the same order); look closer only if they differ."""
        stored: list[tuple[int, int, bytes]] = []
        level = 1
        while (end >> level) > (start >> level):
            stored += self._store.audit_nodes(self._tenant, level, start >> level, end >> level)
            level += 1
        self._compare(nodes, stored)

    def _compare(
        self, nodes: list[tuple[int, int, bytes]], stored: list[tuple[int, int, bytes]]
    ) -> None:
        """Report each recomputed node whose stored row is missing or differs (unless a leaf
        under it is tainted); ``stored`` holds the stored rows of the nodes' ranges."""
        nodes.sort()
        if stored == nodes:
            return
        have = {(level, index): h for level, index, h in stored}
        for level, index, expected in nodes:
            found = have.get((level, index))
            if found == expected or self._tainted_in(index << level, (index + 1) << level):
                continue
            first, last = index << level, ((index + 1) << level) - 1
            what = "is missing" if found is None else "was altered"
            self._problems.append(
                Problem(
                    "tree-node",
                    f"stored node ({level}, {index}) over seq {first}-{last} {what}: proofs"
                    " through it fail",
                    first,
                )
            )

    def check_strays(self, size: int) -> None:
        """Stored nodes that are no complete subtree of the tree ``[0, size)``."""
        strays = self._store.audit_stray_nodes(self._tenant, size)
        if strays:
            listed = ", ".join(f"({level}, {index})" for level, index in strays[:5])
            more = f" and {len(strays) - 5} more" if len(strays) > 5 else ""
            self._problems.append(
                Problem(
                    "tree-node",
                    f"{len(strays)} stored node(s) lie past the tree of size {size}: {listed}"
                    f"{more}",
                )
            )

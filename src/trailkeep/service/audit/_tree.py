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
from itertools import repeat
from typing import Final

from trailkeep.merkle import RFC9162, CompactRange
from trailkeep.model import _native
from trailkeep.storage.base import Store

from ._report import Problem

__all__ = ["TreeChecker"]

_ZERO = bytes(32)
#: RFC 9162's interior node is ``SHA-256(0x01 || left || right)`` (``RFC9162.hash_children``),
#: written inline for the bulk of a chunk's nodes.
_PREFIX: Final = b"\x01"


def _parents_py(row: list[bytes]) -> list[bytes]:
    """One level up: ``RFC9162.hash_children`` of each pair (``_fastleaf.parents`` in C)."""
    return [
        _node(_PREFIX + left + right).digest()
        for left, right in zip(row[0::2], row[1::2], strict=True)
    ]


_parents: Final = _native.parents or _parents_py


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
        width = end - start
        if width & (width - 1) == 0 and start % width == 0 and self._sizes[lo:hi] in ([], [end]):
            whole = self._whole_subtree(start, hashes)
            if hi > lo:
                self.roots[end] = (self._range.root(), self.tainted_below(end))
            self._check_nodes(start, end, whole)
            return
        nodes: list[tuple[int, int, bytes]] = []
        at = start
        for size in self._sizes[lo:hi]:  # stop at each wanted size for its root
            nodes += self._range.extend(hashes[at - start : size - start])
            at = size
            self.roots[size] = (self._range.root(), self.tainted_below(size))
        nodes += self._range.extend(hashes[at - start :])
        self._check_nodes(start, end, nodes)

    def _whole_subtree(self, start: int, hashes: list[bytes]) -> list[tuple[int, int, bytes]]:
        """Append leaves that fill one aligned subtree (a chunk, whose size is a power of two),
        level by level, one C-level loop per level instead of a method call per node; return
        its nodes, and those it completes above it, in (level, index) order."""
        nodes: list[tuple[int, int, bytes]] = []
        level, row = 0, hashes
        while len(row) > 1:
            row = _parents(row)
            level += 1
            first = start >> level
            nodes += zip(repeat(level), range(first, first + len(row)), row)
        frontier = list(self._range.hashes)
        node, index = row[0], start >> level
        while index & 1:  # CompactRange.append's loop, one subtree at a time
            node = RFC9162.hash_children(frontier.pop(), node)
            index >>= 1
            level += 1
            nodes.append((level, index, node))
        frontier.append(node)
        self._range = CompactRange.from_subtrees(RFC9162, start + len(hashes), frontier)
        return nodes

    def _check_nodes(self, start: int, end: int, nodes: list[tuple[int, int, bytes]]) -> None:
        """Compare in one go (lists of rows in the same order); look closer only if they differ."""
        stored: list[tuple[int, int, bytes]] = []
        level = 1
        while (end >> level) > (start >> level):
            stored += self._store.audit_nodes(self._tenant, level, start >> level, end >> level)
            level += 1
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

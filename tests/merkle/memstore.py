"""A dict standing in for the storage layer: it keeps exactly what ``CompactRange`` reports.

It persists what DESIGN §3's store persists: each leaf hash as node ``(0, seq)`` and every row
``CompactRange.append`` returns. Proof tests read only from here, so they prove that those rows
are enough to serve every proof.
"""

from __future__ import annotations

from collections.abc import Iterable

from trailkeep.merkle import CompactRange, LogHasher, NodeID


class MemoryStore:
    """Every complete node of a tree built by appending, keyed by ``NodeID``."""

    def __init__(self, hasher: LogHasher, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.hasher = hasher
        self.range = CompactRange(hasher)
        self.nodes: dict[NodeID, bytes] = {}
        self.extend(leaf_hashes)

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for leaf_hash in leaf_hashes:
            self.nodes[NodeID(0, self.range.size)] = leaf_hash
            for level, index, node in self.range.append(leaf_hash):
                key = NodeID(level, index)
                assert key not in self.nodes, f"{key} reported twice"
                self.nodes[key] = node

    def get(self, node: NodeID) -> bytes:
        return self.nodes[node]

    def get_many(self, nodes: Iterable[NodeID]) -> list[bytes]:
        return [self.nodes[node] for node in nodes]

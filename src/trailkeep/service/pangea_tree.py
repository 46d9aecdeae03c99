"""Pangea's tree of a tenant: roots and proofs in the shapes Pangea's SDK verifies.

The tree is written by storage beside the RFC 9162 tree (``storage.tree``); here a root or a
proof is one read of the complete nodes it needs, folded with ``merkle.pangea_proof``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trailkeep.errors import NotFoundError
from trailkeep.merkle import PANGEA_LEGACY, NodeID
from trailkeep.merkle.pangea_proof import (
    Segment,
    consistency_path,
    format_consistency,
    format_membership,
    membership_path,
    segment_hash,
)
from trailkeep.storage.base import Store

__all__ = ["PangeaProofs", "TreeSizeError"]


class TreeSizeError(NotFoundError):
    """A Pangea root was asked for a size the tenant's tree does not have (``TreeNotFound``)."""


@dataclass(frozen=True, slots=True)
class PangeaProofs:
    """Reads of one tenant's Pangea tree, all against sizes the tree has reached."""

    store: Store
    tenant_id: str

    def size(self) -> int:
        """The tree's current size (the log's size)."""
        return self.store.tree_head(self.tenant_id).size

    def _hashes(self, segments: Iterable[Segment]) -> dict[NodeID, bytes]:
        ids = sorted({node for seg in segments for node in seg.nodes()})
        values = self.store.read_nodes(self.tenant_id, ids, tree="pangea")
        return dict(zip(ids, values, strict=True))

    def _fold(self, segment: Segment, known: dict[NodeID, bytes]) -> bytes:
        return segment_hash(PANGEA_LEGACY, segment, known.__getitem__)

    def _check(self, size: int) -> None:
        current = self.size()
        if not 1 <= size <= current:
            raise TreeSizeError(
                f"no Pangea tree of size {size}: this tenant's tree has sizes 1 to {current}"
            )

    def root(self, size: int) -> bytes:
        """The root hash of the tree's first ``size`` leaves; ``TreeSizeError`` if none."""
        self._check(size)
        whole = Segment(0, size)
        return self._fold(whole, self._hashes([whole]))

    def leaves(self, start: int, end: int) -> list[bytes]:
        """The leaves (event hashes) of ``seq`` in ``[start, end)``."""
        return self.store.leaf_hashes(self.tenant_id, start, end, tree="pangea")

    def membership(self, index: int, size: int) -> str:
        """Leaf ``index``'s membership proof in the tree of ``size`` leaves."""
        self._check(size)
        path = membership_path(index, size)
        known = self._hashes(seg for _, seg in path)
        return format_membership([(side, self._fold(seg, known)) for side, seg in path])

    def memberships(self, indexes: Iterable[int], size: int) -> dict[int, str]:
        """Membership proofs of many leaves in one tree, with one read of the nodes."""
        self._check(size)
        paths = {i: membership_path(i, size) for i in indexes}
        known = self._hashes(seg for path in paths.values() for _, seg in path)
        return {
            i: format_membership([(side, self._fold(seg, known)) for side, seg in path])
            for i, path in paths.items()
        }

    def consistency(self, size1: int, size2: int) -> list[str]:
        """The consistency proof from the tree of ``size1`` leaves to that of ``size2``."""
        self._check(size2)
        items = consistency_path(size1, size2)
        known = self._hashes(seg for top, path in items for seg in (top, *(s for _, s in path)))
        return format_consistency(
            [
                (self._fold(top, known), [(side, self._fold(seg, known)) for side, seg in path])
                for top, path in items
            ]
        )

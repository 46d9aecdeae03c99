"""Proofs of Pangea's tree in the shapes its SDK verifies (``shared/compat/pangea.md`` §5).

Pangea's tree has the RFC 6962 shape; only its hasher and its proof encoding differ:

- a membership proof is a string ``"l:<hex>,r:<hex>,..."``, siblings from the leaf upwards,
  ``l`` when the sibling is on the left;
- a consistency proof from size ``m`` to ``n`` is a list of ``"x:<hex>,<membership path>"``,
  one per maximal complete subtree of ``[0, m)``, smallest (rightmost) first, each with its
  path inside the size-``n`` tree.

As in ``proof``, the functions here only say which nodes they need: a proof is made of
*segments* ``[begin, end)``, nodes of the tree that may be ephemeral, and each segment's hash is
folded from the complete subtrees under it (``range_nodes``), which the store keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trailkeep.errors import InvalidInputError
from trailkeep.merkle.hasher import LogHasher
from trailkeep.merkle.nodes import NodeID, range_nodes

__all__ = [
    "Segment",
    "consistency_path",
    "format_consistency",
    "format_membership",
    "membership_path",
    "segment_hash",
]

#: One step of a path: the sibling's side (``"l"`` or ``"r"``) and the sibling.
Step = tuple[str, "Segment"]


@dataclass(frozen=True, slots=True)
class Segment:
    """The node of the tree that covers leaves ``[begin, end)`` (complete or ephemeral)."""

    begin: int
    end: int

    def nodes(self) -> list[NodeID]:
        """The stored complete subtrees under this node, left to right."""
        return range_nodes(self.begin, self.end)


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _path(lo: int, hi: int, target: Segment) -> list[Step]:
    """The siblings of ``target`` inside the tree ``[lo, hi)``, from ``target`` upwards."""
    steps: list[Step] = []
    while (lo, hi) != (target.begin, target.end):
        mid = lo + _split(hi - lo)
        if target.end <= mid:
            steps.append(("r", Segment(mid, hi)))
            hi = mid
        else:
            steps.append(("l", Segment(lo, mid)))
            lo = mid
    steps.reverse()
    return steps


def membership_path(index: int, size: int) -> list[Step]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves, leaf-side first.

    Raises:
        InvalidInputError: unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise InvalidInputError(f"membership needs 0 <= index < size, got {index} and {size}")
    return _path(0, size, Segment(index, index + 1))


def _decompose(lo: int, hi: int) -> list[Segment]:
    out = []
    while hi - lo & (hi - lo - 1):
        k = _split(hi - lo)
        out.append(Segment(lo, lo + k))
        lo += k
    out.append(Segment(lo, hi))
    return out


def consistency_path(size1: int, size2: int) -> list[tuple[Segment, list[Step]]]:
    """The items of a consistency proof from ``size1`` to ``size2``, smallest subtree first.

    Raises:
        InvalidInputError: unless ``0 < size1 < size2``.
    """
    if not 0 < size1 < size2:
        raise InvalidInputError(f"consistency needs 0 < size1 < size2, got {size1} and {size2}")
    return [(seg, _path(0, size2, seg)) for seg in reversed(_decompose(0, size1))]


def segment_hash(hasher: LogHasher, segment: Segment, get: Callable[[NodeID], bytes]) -> bytes:
    """A segment's hash, folded from the right over the complete subtrees under it."""
    nodes = segment.nodes()
    value = get(nodes[-1])
    for node in reversed(nodes[:-1]):
        value = hasher.hash_children(get(node), value)
    return value


def format_membership(hashes: Sequence[tuple[str, bytes]]) -> str:
    """``"l:<hex>,r:<hex>,..."``; the empty string for an empty path (a one-leaf tree)."""
    return ",".join(f"{side}:{value.hex()}" for side, value in hashes)


def format_consistency(items: Sequence[tuple[bytes, Sequence[tuple[str, bytes]]]]) -> list[str]:
    """``["x:<hex>,<membership path>", ...]``; every item keeps its comma, as the SDK needs."""
    return [f"x:{value.hex()}," + format_membership(path) for value, path in items]

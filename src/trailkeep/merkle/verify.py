"""Verification of RFC 9162 inclusion and consistency proofs, raising a typed error on failure.

The loops are RFC 9162 §2.1.3.2 and §2.1.4.2 step by step (``fn``, ``sn``, ``fr``, ``sr`` are the
RFC's names). Before any hashing the inputs are checked against the shape the proof must have,
the way transparency-dev/merkle does, so a malformed proof fails with an ``InvalidProofError``
that states the violated precondition and its values, while a well-formed proof for the wrong
data fails with a ``RootMismatchError`` showing both roots. Nothing here returns a bool: success
is the absence of an exception, so a forgotten check cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from trailkeep.merkle.errors import InvalidProofError, RootMismatchError
from trailkeep.merkle.hasher import LogHasher

__all__ = [
    "inclusion_proof_length",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]


def inclusion_proof_length(index: int, size: int) -> int:
    """The number of hashes in the inclusion proof of leaf ``index`` in a tree of ``size``.

    Requires ``0 <= index < size``. It is the path length below the point where the paths to
    ``index`` and to the last leaf part (``inner``), plus one hash per level above it where the
    path has a left sibling.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(
    hasher: LogHasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that an inclusion proof for leaf ``index`` leads to (RFC 9162 §2.1.3.2, 1-4).

    Args:
        hasher: the tree's hasher.
        index: the leaf's index; requires ``0 <= index < size``.
        size: the tree size the proof claims.
        leaf_hash: the leaf's hash; requires ``len(leaf_hash) == hasher.size``.
        proof: the audit path, lowest level first; requires exactly
            ``inclusion_proof_length(index, size)`` hashes of ``hasher.size`` bytes.

    Raises:
        InvalidProofError: a precondition above does not hold.
    """
    if not 0 <= index < size:
        raise InvalidProofError(
            f"inclusion proof needs 0 <= index < size, got index {index} and size {size}"
        )
    _check_length(hasher, leaf_hash, "leaf hash")
    want = inclusion_proof_length(index, size)
    if len(proof) != want:
        raise InvalidProofError(
            f"inclusion proof for index {index} in a tree of size {size} must have {want} "
            f"hashes, got {len(proof)}"
        )
    _check_elements(hasher, proof)
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:  # unreachable once the length matched; kept as the RFC states it
            raise InvalidProofError(f"inclusion proof for index {index} is too long")
        if fn & 1 or fn == sn:
            r = hasher.hash_children(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = hasher.hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # likewise unreachable: a too-short proof fails the length check
        raise InvalidProofError(f"inclusion proof for index {index} is too short")
    return r


def verify_inclusion(
    hasher: LogHasher,
    index: int,
    size: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
    root: bytes,
) -> None:
    """Check that leaf ``index`` with ``leaf_hash`` is in the tree of ``size`` with ``root``.

    Preconditions as for ``root_from_inclusion_proof``, plus ``len(root) == hasher.size``.

    Raises:
        InvalidProofError: a precondition does not hold.
        RootMismatchError: the proof leads to another root.
    """
    _check_length(hasher, root, "root")
    calculated = root_from_inclusion_proof(hasher, index, size, leaf_hash, proof)
    if calculated != root:
        raise RootMismatchError(root, calculated, size)


def root_from_consistency_proof(
    hasher: LogHasher, size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> bytes:
    """Check ``proof`` against ``root1`` and return the root of size ``size2`` it leads to.

    RFC 9162 §2.1.4.2 for ``0 < size1 < size2``; for ``size1 == size2``, which the RFC leaves
    out, the proof must be empty and the result is ``root1``. From the empty tree no root can
    be derived (any tree extends it), so ``size1 == 0`` is only handled by
    ``verify_consistency``.

    Args:
        hasher: the tree's hasher.
        size1: the older size; requires ``0 < size1 <= size2``.
        size2: the newer size.
        proof: requires exactly the RFC 9162 number of hashes for the two sizes (none when
            ``size1 == size2``), each ``hasher.size`` bytes.
        root1: the trusted root of the older tree.

    Raises:
        InvalidProofError: a precondition does not hold.
        RootMismatchError: the proof does not lead to ``root1``.
    """
    if not 0 < size1 <= size2:
        raise InvalidProofError(
            f"consistency proof needs 0 < size1 <= size2, got size1 {size1} and size2 {size2}"
        )
    _check_length(hasher, root1, "root1")
    if size1 == size2:
        if proof:
            raise InvalidProofError(
                f"consistency proof between equal sizes {size1} must be empty, got "
                f"{len(proof)} hashes"
            )
        return root1
    if not proof:
        raise InvalidProofError(f"consistency proof from size {size1} to {size2} is empty")
    want = _consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise InvalidProofError(
            f"consistency proof from size {size1} to {size2} must have {want} hashes, "
            f"got {len(proof)}"
        )
    _check_elements(hasher, proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable once the length matched; kept as the RFC states it
            raise InvalidProofError(f"consistency proof from size {size1} is too long")
        if fn & 1 or fn == sn:
            fr = hasher.hash_children(c, fr)
            sr = hasher.hash_children(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = hasher.hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # likewise unreachable: a too-short proof fails the length check
        raise InvalidProofError(f"consistency proof from size {size1} is too short")
    if fr != root1:
        raise RootMismatchError(root1, fr, size1)
    return sr


def verify_consistency(
    hasher: LogHasher,
    size1: int,
    size2: int,
    proof: Sequence[bytes],
    root1: bytes,
    root2: bytes,
) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of ``size2`` with ``root2``.

    RFC 9162 §2.1.4.2 for ``0 < size1 < size2``. Also defined: ``size1 == size2`` needs an
    empty proof and ``root1 == root2``; ``size1 == 0`` needs an empty proof and ``root1`` equal
    to ``hasher.empty_root()`` (the empty tree is a prefix of every tree). Requires
    ``0 <= size1 <= size2`` and both roots ``hasher.size`` bytes long.

    Raises:
        InvalidProofError: a precondition does not hold, or the proof has the wrong length.
        RootMismatchError: the proof does not lead to ``root1`` or to ``root2``.
    """
    if not 0 <= size1 <= size2:
        raise InvalidProofError(
            f"consistency proof needs 0 <= size1 <= size2, got size1 {size1} and size2 {size2}"
        )
    _check_length(hasher, root2, "root2")
    if size1 == 0:
        _check_length(hasher, root1, "root1")
        if proof:
            raise InvalidProofError(
                f"consistency proof from the empty tree must be empty, got {len(proof)} hashes"
            )
        if root1 != hasher.empty_root():
            raise RootMismatchError(root1, hasher.empty_root(), 0)
        if size2 == 0 and root2 != root1:
            raise RootMismatchError(root2, root1, 0)
        return
    calculated = root_from_consistency_proof(hasher, size1, size2, proof, root1)
    if calculated != root2:
        raise RootMismatchError(root2, calculated, size2)


def _consistency_proof_length(size1: int, size2: int) -> int:
    # The proof is the inclusion proof of leaf size1-1 in size2, minus the levels below the
    # largest complete subtree ending at size1, plus that subtree's own hash unless it is the
    # whole old tree (size1 a power of two).
    shift = (size1 & -size1).bit_length() - 1
    seed = 0 if size1 & (size1 - 1) == 0 else 1
    return seed + inclusion_proof_length(size1 - 1, size2) - shift


def _check_length(hasher: LogHasher, value: bytes, what: str) -> None:
    if len(value) != hasher.size:
        raise InvalidProofError(f"{what} must be {hasher.size} bytes, got {len(value)}")


def _check_elements(hasher: LogHasher, proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != hasher.size:
            raise InvalidProofError(
                f"proof[{position}] must be {hasher.size} bytes, got {len(value)}"
            )

"""Proof shapes: stored complete subtrees, rehashed, give RFC 9162's PATH and PROOF exactly."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings

from trailkeep.errors import InvalidInputError
from trailkeep.merkle import RFC9162, NodeID, Nodes, consistency, inclusion

from .memstore import MemoryStore
from .reference import ReferenceTree, leaf_data
from .strategies import MAX_TREE_SIZE, index_and_size, size_pairs

EXHAUSTIVE = 70


@cache
def tree() -> tuple[ReferenceTree, MemoryStore]:
    """One reference tree and one store of MAX_TREE_SIZE leaves serve every smaller size."""
    ref = ReferenceTree(RFC9162, [leaf_data(i) for i in range(MAX_TREE_SIZE)])
    return ref, MemoryStore(RFC9162, ref.leaf_hashes)


def fetch_and_rehash(nodes: Nodes, size: int) -> list[bytes]:
    """What the service does: fetch every id from the store, then rehash."""
    for node in nodes.ids:
        assert (node.index + 1) << node.level <= size, f"{node} is not complete in size {size}"
    assert len(set(nodes.ids)) == len(nodes.ids), "an id is fetched twice"
    assert len(nodes.ids) <= 2 * size.bit_length(), "more than O(log n) reads"
    _, store = tree()
    return nodes.rehash(store.get_many(nodes.ids), RFC9162)


def check_inclusion(index: int, size: int) -> None:
    ref, _ = tree()
    assert fetch_and_rehash(inclusion(index, size), size) == ref.path(index, size)


def check_consistency(size1: int, size2: int) -> None:
    ref, _ = tree()
    assert fetch_and_rehash(consistency(size1, size2), size2) == ref.proof(size1, size2)


class TestInclusion:
    """inclusion(index, size) names stored nodes that rehash to PATH(index, D[size])."""

    @pytest.mark.parametrize(
        "size", [pytest.param(n, id=f"size-{n}") for n in range(1, EXHAUSTIVE + 1)]
    )
    def test_every_index(self, size: int) -> None:
        for index in range(size):
            check_inclusion(index, size)

    @settings(max_examples=150, deadline=None)
    @given(index_and_size())
    def test_large_trees(self, case: tuple[int, int]) -> None:
        check_inclusion(*case)

    @pytest.mark.parametrize(
        ("index", "size"),
        [
            pytest.param(0, 0, id="empty-tree"),
            pytest.param(5, 5, id="index-equals-size"),
            pytest.param(6, 5, id="index-beyond-size"),
            pytest.param(-1, 5, id="negative-index"),
        ],
    )
    def test_rejects_out_of_range(self, index: int, size: int) -> None:
        with pytest.raises(InvalidInputError, match=rf"index {index} and size {size}"):
            inclusion(index, size)

    @pytest.mark.parametrize(
        ("index", "size", "ids", "ephem"),
        [
            pytest.param(0, 1, [], None, id="single-leaf"),
            pytest.param(0, 8, [NodeID(0, 1), NodeID(1, 1), NodeID(2, 1)], None, id="perfect-tree"),
            pytest.param(
                0,
                7,
                [NodeID(0, 1), NodeID(1, 1), NodeID(0, 6), NodeID(1, 2)],
                NodeID(2, 1),
                id="ephemeral-right",
            ),
            pytest.param(6, 7, [NodeID(1, 2), NodeID(2, 0)], None, id="last-leaf"),
        ],
    )
    def test_shapes(self, index: int, size: int, ids: list[NodeID], ephem: NodeID | None) -> None:
        nodes = inclusion(index, size)
        assert list(nodes.ids) == ids
        assert nodes.ephem == ephem
        assert (nodes.begin < nodes.end) == (ephem is not None)


class TestConsistency:
    """consistency(size1, size2) names stored nodes that rehash to PROOF(size1, D[size2])."""

    @pytest.mark.parametrize(
        "size2", [pytest.param(n, id=f"size2-{n}") for n in range(EXHAUSTIVE + 1)]
    )
    def test_every_older_size(self, size2: int) -> None:
        for size1 in range(size2 + 1):
            check_consistency(size1, size2)

    @settings(max_examples=150, deadline=None)
    @given(size_pairs())
    def test_large_trees(self, case: tuple[int, int]) -> None:
        check_consistency(*case)

    @pytest.mark.parametrize(
        ("size1", "size2"),
        [pytest.param(5, 4, id="size1>size2"), pytest.param(-1, 4, id="negative-size1")],
    )
    def test_rejects_bad_sizes(self, size1: int, size2: int) -> None:
        with pytest.raises(InvalidInputError, match=rf"size1 {size1} and size2 {size2}"):
            consistency(size1, size2)

    @pytest.mark.parametrize(
        ("size1", "size2"),
        [pytest.param(0, 9, id="from-empty"), pytest.param(9, 9, id="same-size")],
    )
    def test_trivial_proofs_are_empty(self, size1: int, size2: int) -> None:
        assert consistency(size1, size2) == Nodes(ids=())


class TestRehash:
    """rehash folds the ephemeral block into one element and checks what the store returned."""

    def test_folds_ephemeral_block(self) -> None:
        nodes = Nodes(ids=(NodeID(0, 1), NodeID(0, 6), NodeID(1, 2), NodeID(2, 0)), begin=1, end=3)
        a, b, c, d = (bytes([n]) * 32 for n in range(4))
        assert nodes.rehash([a, b, c, d], RFC9162) == [a, RFC9162.hash_children(c, b), d]

    def test_rejects_wrong_number_of_hashes(self) -> None:
        with pytest.raises(InvalidInputError, match=r"got 1 hashes for 2 node ids"):
            inclusion(0, 3).rehash([b"x" * 32], RFC9162)

    def test_rejects_wrong_hash_length(self) -> None:
        with pytest.raises(InvalidInputError, match=r"must be 32 bytes, got 3"):
            inclusion(0, 3).rehash([b"x" * 32, b"abc"], RFC9162)

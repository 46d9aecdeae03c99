"""The compact range: roots, reported complete subtrees, resuming, against the reference tree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailkeep.errors import InvalidInputError
from trailkeep.merkle import (
    PANGEA_LEGACY,
    RFC9162,
    CompactRange,
    LogHasher,
    NodeID,
    root_from_subtrees,
    subtree_ids,
)

from .memstore import MemoryStore
from .reference import ReferenceTree, leaf_data

MAX = 130
HASHERS = [pytest.param(RFC9162, id="rfc9162"), pytest.param(PANGEA_LEGACY, id="pangea-legacy")]


def reference(hasher: LogHasher, size: int = MAX) -> ReferenceTree:
    return ReferenceTree(hasher, [leaf_data(i) for i in range(size)])


@pytest.mark.parametrize("hasher", HASHERS)
class TestCompactRangeAgainstReference:
    """Appending leaves one by one gives RFC 9162's MTH at every size and reports every node."""

    def test_root_at_every_size(self, hasher: LogHasher) -> None:
        ref = reference(hasher)
        cr = CompactRange(hasher)
        assert cr.root() == ref.root(0) == hasher.empty_root()
        for size in range(1, MAX + 1):
            cr.append(ref.leaf_hashes[size - 1])
            assert cr.size == size
            assert cr.root() == ref.root(size), f"size {size}"

    def test_reports_every_complete_interior_node_once(self, hasher: LogHasher) -> None:
        ref = reference(hasher)
        store = MemoryStore(hasher, ref.leaf_hashes)
        complete = {
            NodeID(level, index)
            for level in range(MAX.bit_length())
            for index in range(MAX >> level)
        }
        assert set(store.nodes) == complete
        for node, value in store.nodes.items():
            assert value == ref.mth(*node.coverage()), f"{node}"

    def test_rows_per_append_follow_the_trailing_ones(self, hasher: LogHasher) -> None:
        ref = reference(hasher)
        cr = CompactRange(hasher)
        for size in range(MAX):
            rows = cr.append(ref.leaf_hashes[size])
            trailing_ones = (~size & (size + 1)).bit_length() - 1
            assert [(level, index) for level, index, _ in rows] == [
                (level, size >> level) for level in range(1, trailing_ones + 1)
            ]

    def test_frontier_is_the_subtree_decomposition(self, hasher: LogHasher) -> None:
        ref = reference(hasher)
        cr = CompactRange(hasher)
        for size in range(MAX + 1):
            assert cr.hashes == tuple(ref.mth(*node.coverage()) for node in subtree_ids(size))
            if size < MAX:
                cr.append(ref.leaf_hashes[size])

    def test_root_from_subtrees_at_every_size(self, hasher: LogHasher) -> None:
        ref = reference(hasher)
        store = MemoryStore(hasher, ref.leaf_hashes)
        for size in range(MAX + 1):
            assert root_from_subtrees(hasher, size, store.get) == ref.root(size), f"size {size}"

    def test_resume_from_stored_subtrees(self, hasher: LogHasher) -> None:
        ref = reference(hasher)
        store = MemoryStore(hasher, ref.leaf_hashes)
        for size in (0, 1, 7, 64, 100):
            cr = CompactRange.from_subtrees(hasher, size, store.get_many(subtree_ids(size)))
            assert cr.root() == ref.root(size)
            rows = cr.extend(ref.leaf_hashes[size:])
            assert cr.root() == ref.root(MAX)
            for level, index, value in rows:
                assert store.nodes[NodeID(level, index)] == value


class TestCompactRangeBehaviour:
    """The range validates its input, copies independently and batches like single appends."""

    def test_extend_equals_repeated_append(self) -> None:
        leaves = [RFC9162.hash_leaf(leaf_data(i)) for i in range(37)]
        one = CompactRange(RFC9162)
        rows = [row for leaf in leaves for row in one.append(leaf)]
        other = CompactRange(RFC9162)
        assert other.extend(leaves) == rows
        assert other.root() == one.root()

    def test_extend_is_all_or_nothing(self) -> None:
        cr = CompactRange(RFC9162)
        cr.extend([RFC9162.hash_leaf(b"first")])
        root = cr.root()
        batch = [RFC9162.hash_leaf(b"a"), RFC9162.hash_leaf(b"b"), b"short"]
        with pytest.raises(InvalidInputError, match=r"leaf hash \[2\] must be 32 bytes, got 5"):
            cr.extend(iter(batch))
        assert (cr.size, cr.root()) == (1, root)

    @pytest.mark.parametrize("start", [0, 1, 6, 7, 64])
    def test_absorb_reaches_the_root_of_extend(self, start: int) -> None:
        leaves = [RFC9162.hash_leaf(leaf_data(i)) for i in range(start + 45)]
        one, other = CompactRange(RFC9162), CompactRange(RFC9162)
        one.extend(leaves)
        other.extend(leaves[:start])
        other.absorb(iter(leaves[start:]))
        assert (other.size, other.hashes, other.root()) == (one.size, one.hashes, one.root())

    def test_absorb_is_all_or_nothing(self) -> None:
        cr = CompactRange(RFC9162)
        cr.absorb([RFC9162.hash_leaf(b"first")])
        root = cr.root()
        with pytest.raises(InvalidInputError, match=r"leaf hash \[1\] must be 32 bytes, got 5"):
            cr.absorb([RFC9162.hash_leaf(b"a"), b"short"])
        assert (cr.size, cr.root()) == (1, root)

    def test_copy_is_independent(self) -> None:
        cr = CompactRange(RFC9162)
        cr.extend(RFC9162.hash_leaf(leaf_data(i)) for i in range(5))
        root5 = cr.root()
        trial = cr.copy()
        trial.append(RFC9162.hash_leaf(b"abandoned"))
        assert (cr.size, cr.root()) == (5, root5)
        assert trial.size == 6

    @pytest.mark.parametrize(
        "leaf_hash",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"x" * 31, id="short"),
            pytest.param(b"x" * 33, id="long"),
        ],
    )
    def test_rejects_leaf_hash_of_wrong_length(self, leaf_hash: bytes) -> None:
        cr = CompactRange(RFC9162)
        with pytest.raises(InvalidInputError, match=r"leaf hash must be 32 bytes"):
            cr.append(leaf_hash)
        assert cr.size == 0

    @pytest.mark.parametrize(
        ("size", "hashes", "message"),
        [
            pytest.param(-1, [], r"tree size must be >= 0", id="negative-size"),
            pytest.param(3, [b"x" * 32], r"has 2 complete subtrees, got 1", id="missing-hash"),
            pytest.param(4, [b"x" * 32] * 2, r"has 1 complete subtrees, got 2", id="extra-hash"),
            pytest.param(1, [b"x" * 31], r"subtree hash \[0\] must be 32 bytes", id="short-hash"),
        ],
    )
    def test_from_subtrees_rejects_mismatched_hashes(
        self, size: int, hashes: list[bytes], message: str
    ) -> None:
        with pytest.raises(InvalidInputError, match=message):
            CompactRange.from_subtrees(RFC9162, size, hashes)

    def test_root_from_subtrees_rejects_bad_store_values(self) -> None:
        with pytest.raises(InvalidInputError, match=r"hash of NodeID\(level=0, index=2\)"):
            root_from_subtrees(RFC9162, 3, lambda node: b"x" * (32 if node.level else 5))
        with pytest.raises(InvalidInputError, match=r"tree size must be >= 0"):
            root_from_subtrees(RFC9162, -1, lambda node: b"")

    @given(st.lists(st.binary(max_size=40), max_size=70))
    def test_any_leaves_give_the_reference_root(self, leaves: list[bytes]) -> None:
        cr = CompactRange(RFC9162)
        cr.extend(RFC9162.hash_leaf(leaf) for leaf in leaves)
        assert cr.root() == ReferenceTree(RFC9162, leaves).root(len(leaves))

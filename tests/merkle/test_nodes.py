"""Node ids and the decomposition of leaf ranges into complete subtrees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailkeep.errors import InvalidInputError
from trailkeep.merkle import NodeID, range_nodes, subtree_ids


def greedy_cover(begin: int, end: int) -> list[NodeID]:
    """The obviously minimal cover: from the left, take the largest aligned subtree that fits."""
    ids = []
    pos = begin
    while pos < end:
        level = 0
        while pos % (1 << (level + 1)) == 0 and pos + (1 << (level + 1)) <= end:
            level += 1
        ids.append(NodeID(level, pos >> level))
        pos += 1 << level
    return ids


class TestNodeID:
    """A NodeID names the complete subtree of 2**level leaves at index * 2**level."""

    @pytest.mark.parametrize(
        ("node", "parent", "sibling", "coverage"),
        [
            pytest.param(NodeID(0, 0), NodeID(1, 0), NodeID(0, 1), (0, 1), id="first-leaf"),
            pytest.param(NodeID(0, 5), NodeID(1, 2), NodeID(0, 4), (5, 6), id="right-leaf"),
            pytest.param(NodeID(2, 1), NodeID(3, 0), NodeID(2, 0), (4, 8), id="interior"),
            pytest.param(NodeID(3, 6), NodeID(4, 3), NodeID(3, 7), (48, 56), id="high"),
        ],
    )
    def test_relatives(
        self, node: NodeID, parent: NodeID, sibling: NodeID, coverage: tuple[int, int]
    ) -> None:
        assert node.parent() == parent
        assert node.sibling() == sibling
        assert node.coverage() == coverage

    @pytest.mark.parametrize(
        ("level", "index"),
        [pytest.param(-1, 0, id="negative-level"), pytest.param(0, -1, id="negative-index")],
    )
    def test_rejects_negative(self, level: int, index: int) -> None:
        with pytest.raises(InvalidInputError):
            NodeID(level, index)

    def test_is_hashable_and_ordered(self) -> None:
        assert len({NodeID(1, 2), NodeID(1, 2)}) == 1
        assert sorted([NodeID(1, 0), NodeID(0, 3)]) == [NodeID(0, 3), NodeID(1, 0)]


class TestRangeNodes:
    """range_nodes covers [begin, end) with the fewest complete subtrees, left to right."""

    @given(st.integers(0, 5000), st.integers(0, 5000))
    def test_equals_greedy_minimal_cover(self, a: int, b: int) -> None:
        begin, end = min(a, b), max(a, b)
        assert range_nodes(begin, end) == greedy_cover(begin, end)

    @pytest.mark.parametrize(
        ("begin", "end", "expected"),
        [
            pytest.param(0, 0, [], id="empty-at-0"),
            pytest.param(5, 5, [], id="empty-at-5"),
            pytest.param(0, 8, [NodeID(3, 0)], id="perfect"),
            pytest.param(0, 13, [NodeID(3, 0), NodeID(2, 2), NodeID(0, 12)], id="prefix-of-13"),
            pytest.param(
                3, 13, [NodeID(0, 3), NodeID(2, 1), NodeID(2, 2), NodeID(0, 12)], id="3-to-13"
            ),
        ],
    )
    def test_examples(self, begin: int, end: int, expected: list[NodeID]) -> None:
        assert range_nodes(begin, end) == expected

    @pytest.mark.parametrize(
        ("begin", "end"),
        [pytest.param(-1, 3, id="negative-begin"), pytest.param(4, 3, id="begin-after-end")],
    )
    def test_rejects_bad_ranges(self, begin: int, end: int) -> None:
        with pytest.raises(InvalidInputError, match=r"0 <= begin <= end"):
            range_nodes(begin, end)


class TestSubtreeIds:
    """subtree_ids(size) has one complete subtree per set bit of size, largest first."""

    @given(st.integers(0, 2**70))
    def test_one_per_set_bit(self, size: int) -> None:
        ids = subtree_ids(size)
        assert len(ids) == size.bit_count()
        assert [1 << node.level for node in ids] == sorted(
            (1 << bit for bit in range(size.bit_length()) if size >> bit & 1), reverse=True
        )
        assert sum(1 << node.level for node in ids) == size

    def test_rejects_negative_size(self) -> None:
        with pytest.raises(InvalidInputError):
            subtree_ids(-1)

"""Pangea-shaped proofs, checked by the Pangea SDK's own verifiers and the compat doc's vectors."""

from __future__ import annotations

from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.errors import InvalidInputError
from trailkeep.merkle import PANGEA_LEGACY, CompactRange, NodeID
from trailkeep.merkle.pangea_proof import (
    Segment,
    consistency_path,
    format_consistency,
    format_membership,
    membership_path,
    segment_hash,
)

sdk = pytest.importorskip("pangea.services.audit.util", reason="pangea-sdk (compat extra)")

MAX = 70


def build(size: int) -> tuple[list[bytes], dict[NodeID, bytes]]:
    """``size`` leaves and every complete node of their Pangea tree, as storage keeps them."""
    leaves = [sha256(f"event {i}".encode()).digest() for i in range(size)]
    compact = CompactRange(PANGEA_LEGACY)
    nodes = {NodeID(0, i): leaf for i, leaf in enumerate(leaves)}
    for level, idx, value in compact.extend(leaves):
        nodes[NodeID(level, idx)] = value
    return leaves, nodes


def root(nodes: dict[NodeID, bytes], size: int) -> bytes:
    return segment_hash(PANGEA_LEGACY, Segment(0, size), nodes.__getitem__)


def membership(nodes: dict[NodeID, bytes], index: int, size: int) -> str:
    path = membership_path(index, size)
    return format_membership(
        [(side, segment_hash(PANGEA_LEGACY, seg, nodes.__getitem__)) for side, seg in path]
    )


def consistency(nodes: dict[NodeID, bytes], size1: int, size2: int) -> list[str]:
    fold = lambda seg: segment_hash(PANGEA_LEGACY, seg, nodes.__getitem__)  # noqa: E731
    items = consistency_path(size1, size2)
    return format_consistency([(fold(top), [(s, fold(g)) for s, g in p]) for top, p in items])


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@st.composite
def size_pairs(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(2, MAX))
    return draw(st.integers(1, size2 - 1)), size2


class TestMembershipAgainstTheSdk:
    """Every leaf's proof in every tree size passes the SDK's verifier; a wrong leaf fails it."""

    @settings(max_examples=300, deadline=None)
    @given(index_and_size())
    def test_verifies(self, case: tuple[int, int]) -> None:
        index, size = case
        leaves, nodes = build(size)
        proof = sdk.decode_membership_proof(membership(nodes, index, size))
        assert sdk.verify_membership_proof(leaves[index], root(nodes, size), proof)

    @settings(max_examples=100, deadline=None)
    @given(index_and_size())
    def test_wrong_leaf_fails(self, case: tuple[int, int]) -> None:
        index, size = case
        leaves, nodes = build(size)
        proof = sdk.decode_membership_proof(membership(nodes, index, size))
        wrong = sha256(leaves[index]).digest()
        assert not sdk.verify_membership_proof(wrong, root(nodes, size), proof)

    def test_one_leaf_tree_has_the_empty_proof(self) -> None:
        assert membership(build(1)[1], 0, 1) == ""

    @pytest.mark.parametrize(
        ("index", "size"),
        [pytest.param(3, 3, id="index-past-end"), pytest.param(-1, 3, id="negative-index")],
    )
    def test_out_of_range_is_refused(self, index: int, size: int) -> None:
        with pytest.raises(InvalidInputError, match="0 <= index < size"):
            membership_path(index, size)


class TestConsistencyAgainstTheSdk:
    """Every pair of sizes gives a proof the SDK accepts, and rejects against another root."""

    @settings(max_examples=300, deadline=None)
    @given(size_pairs())
    def test_verifies(self, case: tuple[int, int]) -> None:
        size1, size2 = case
        _, nodes = build(size2)
        proof = sdk.decode_consistency_proof(consistency(nodes, size1, size2))
        assert sdk.verify_consistency_proof(root(nodes, size2), root(nodes, size1), proof)

    @settings(max_examples=100, deadline=None)
    @given(size_pairs())
    def test_wrong_old_root_fails(self, case: tuple[int, int]) -> None:
        size1, size2 = case
        _, nodes = build(size2)
        proof = sdk.decode_consistency_proof(consistency(nodes, size1, size2))
        wrong = sha256(root(nodes, size1)).digest()
        assert not sdk.verify_consistency_proof(root(nodes, size2), wrong, proof)

    @pytest.mark.parametrize(
        ("size1", "size2"),
        [pytest.param(0, 3, id="from-empty"), pytest.param(3, 3, id="same-size")],
    )
    def test_out_of_range_is_refused(self, size1: int, size2: int) -> None:
        with pytest.raises(InvalidInputError, match="0 < size1 < size2"):
            consistency_path(size1, size2)


class TestCompatDocVectors:
    """The small synthetic vector of ``shared/compat/pangea.md`` §4.3, byte for byte."""

    LEAVES = (
        "01d9ec86e077bc8498f7bd242395bf2766c1bb4d7d70eabc2af09922f643a342",
        "c782c951d1dd2aff371fe4753f50115d846f499552d663d9bcc2f4c6763813fc",
        "9a0f5aabb325fc013c08451efcad65948e745aa149cb5ba59d1222dc784125dd",
    )

    def nodes(self) -> dict[NodeID, bytes]:
        leaves = [bytes.fromhex(h) for h in self.LEAVES]
        compact = CompactRange(PANGEA_LEGACY)
        nodes = {NodeID(0, i): leaf for i, leaf in enumerate(leaves)}
        nodes.update({NodeID(lv, i): v for lv, i, v in compact.extend(leaves)})
        return nodes

    def test_root_of_three(self) -> None:
        assert root(self.nodes(), 3).hex() == (
            "6795cca0d5d32bb91a8210e3dc585b25d5cac9ea716d7857ae60e892296429c8"
        )

    def test_membership_of_the_last_leaf(self) -> None:
        two = root(self.nodes(), 2).hex()
        assert membership(self.nodes(), 2, 3) == f"l:{two}"

    def test_consistency_one_to_three(self) -> None:
        a, b, c = self.LEAVES
        assert consistency(self.nodes(), 1, 3) == [f"x:{a},r:{b},r:{c}"]

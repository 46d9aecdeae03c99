"""Proof verification: accepts every correct proof, rejects every mutation with a typed error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailkeep.errors import IntegrityError
from trailkeep.merkle import (
    PANGEA_LEGACY,
    RFC9162,
    InvalidProofError,
    ProofError,
    RootMismatchError,
    inclusion_proof_length,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

from .reference import ReferenceTree, leaf_data, path_sides, proof_shape
from .test_hasher import RFC6962_LEAVES, RFC6962_ROOTS

EMPTY = RFC9162.empty_root()
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def h(hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes.split()]


# transparency-dev/merkle proof/verify_test.go (leaf numbers there are 1-based).
INCLUSION_VECTORS = [
    pytest.param(0, 1, [], id="leaf-0-of-1"),
    pytest.param(
        0,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
        id="leaf-0-of-8",
    ),
    pytest.param(
        5,
        8,
        h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
        id="leaf-5-of-8",
    ),
    pytest.param(
        2,
        3,
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        id="leaf-2-of-3",
    ),
    pytest.param(
        1,
        5,
        h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
        id="leaf-1-of-5",
    ),
]
CONSISTENCY_VECTORS = [
    pytest.param(1, 1, [], id="1-to-1"),
    pytest.param(
        1,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
        id="1-to-8",
    ),
    pytest.param(
        6,
        8,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
        id="6-to-8",
    ),
    pytest.param(
        2,
        5,
        h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
        id="2-to-5",
    ),
    pytest.param(
        6,
        7,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
        id="6-to-7",
    ),
]


@cache
def tree() -> ReferenceTree:
    return ReferenceTree(RFC9162, [leaf_data(i) for i in range(300)])


def flip(value: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(value)
    changed[position] ^= 1 << bit
    return bytes(changed)


@dataclass(frozen=True)
class Inclusion:
    index: int
    size: int
    leaf_hash: bytes
    proof: Sequence[bytes]
    root: bytes

    def verify(self) -> None:
        verify_inclusion(RFC9162, self.index, self.size, self.leaf_hash, self.proof, self.root)

    def error_after_moving(self, good: Inclusion) -> type[ProofError] | None:
        """The error for claiming ``good``'s proof at another index or size.

        None when the claim has the same shape, which no verifier can detect (see
        ``reference.path_sides``).
        """
        if not 0 <= self.index < self.size:
            return InvalidProofError
        sides = path_sides(self.index, self.size)
        if len(sides) != len(self.proof):
            return InvalidProofError
        if sides == path_sides(good.index, good.size):
            return None
        return RootMismatchError


@dataclass(frozen=True)
class Consistency:
    size1: int
    size2: int
    proof: Sequence[bytes]
    root1: bytes
    root2: bytes

    def verify(self) -> None:
        verify_consistency(RFC9162, self.size1, self.size2, self.proof, self.root1, self.root2)

    def error_after_moving(self, good: Consistency) -> type[ProofError] | None:
        """The error for claiming ``good``'s (non-empty) proof between other sizes, or None."""
        if not 0 < self.size1 < self.size2:
            return InvalidProofError  # also size1 == 0 or size1 == size2: proof must be empty
        shape = proof_shape(self.size1, self.size2)
        if len(shape) != len(self.proof):
            return InvalidProofError
        if shape == proof_shape(good.size1, good.size2):
            return None
        return RootMismatchError


Mutation = tuple[str, Callable[[], None], type[ProofError]]


def inclusion_mutations(good: Inclusion) -> list[Mutation]:
    """Every way we know to break an inclusion proof, each with the error it must raise."""
    i, n, proof = good.index, good.size, list(good.proof)
    moved = [
        ("wrong-index+1", replace(good, index=i + 1)),
        ("wrong-index-1", replace(good, index=i - 1)),
        ("wrong-index^2", replace(good, index=i ^ 2)),
        ("index-equals-size", replace(good, index=n)),
        ("wrong-size+1", replace(good, size=n + 1)),
        ("wrong-size-1", replace(good, size=n - 1)),
        ("wrong-size*2", replace(good, size=n * 2)),
        ("wrong-size/2", replace(good, size=n // 2)),
    ]
    cases: list[Mutation] = [
        (name, bad.verify, error)
        for name, bad in moved
        if (error := bad.error_after_moving(good)) is not None
    ]
    invalid = [
        ("wrong-leaf-length", replace(good, leaf_hash=good.leaf_hash[:-1])),
        ("wrong-root-length", replace(good, root=good.root + b"\x00")),
        ("extra-element", replace(good, proof=[*proof, good.root])),
        ("trailing-garbage", replace(good, proof=[*proof, b""])),
        ("preceding-element", replace(good, proof=[good.root, *proof])),
        ("preceding-garbage", replace(good, proof=[b"", *proof])),
    ]
    if proof:
        invalid += [
            ("missing-element", replace(good, proof=proof[:-1])),
            ("missing-first-element", replace(good, proof=proof[1:])),
            ("empty-proof", replace(good, proof=[])),
            ("truncated-proof[0]", replace(good, proof=[proof[0][:-1], *proof[1:]])),
        ]
    cases += [(name, bad.verify, InvalidProofError) for name, bad in invalid]
    mismatch = [
        ("wrong-leaf", replace(good, leaf_hash=flip(good.leaf_hash, 0, 0))),
        ("wrong-root", replace(good, root=flip(good.root, 31, 7))),
        ("empty-tree-root", replace(good, root=EMPTY)),
        ("some-root", replace(good, root=SOME_HASH)),
        ("leaf-is-root", replace(good, leaf_hash=good.root)),
    ]
    for k in range(len(proof)):
        for bit in (0, 3, 7):
            changed = [*proof[:k], flip(proof[k], 0, bit), *proof[k + 1 :]]
            mismatch.append((f"modified-proof[{k}]-bit-{bit}", replace(good, proof=changed)))
        mismatch.append(
            (f"replaced-proof[{k}]", replace(good, proof=[*proof[:k], SOME_HASH, *proof[k + 1 :]]))
        )
    for k in range(len(proof) - 1):
        if proof[k] != proof[k + 1]:
            swapped = [*proof[:k], proof[k + 1], proof[k], *proof[k + 2 :]]
            mismatch.append((f"swapped-elements[{k},{k + 1}]", replace(good, proof=swapped)))
    cases += [(name, bad.verify, RootMismatchError) for name, bad in mismatch if bad != good]
    return cases


def consistency_mutations(good: Consistency) -> list[Mutation]:
    """Every way we know to break a non-trivial consistency proof, with the error it raises."""
    m, n, proof = good.size1, good.size2, list(good.proof)
    moved = [
        ("wrong-size1+1", replace(good, size1=m + 1)),
        ("wrong-size1-1", replace(good, size1=m - 1)),
        ("wrong-size1^2", replace(good, size1=m ^ 2)),
        ("wrong-size2+1", replace(good, size2=n + 1)),
        ("wrong-size2-1", replace(good, size2=n - 1)),
        ("wrong-size2*2", replace(good, size2=n * 2)),
        ("wrong-size2/2", replace(good, size2=n // 2)),
        ("size1>size2", replace(good, size1=n, size2=m)),
        ("size1-equals-size2", replace(good, size1=n)),
        ("from-empty-tree", replace(good, size1=0)),
    ]
    cases: list[Mutation] = [
        (name, bad.verify, error)
        for name, bad in moved
        if (error := bad.error_after_moving(good)) is not None
    ]
    invalid = [
        ("empty-proof", replace(good, proof=[])),
        ("extra-element", replace(good, proof=[*proof, good.root2])),
        ("trailing-garbage", replace(good, proof=[*proof, b""])),
        ("preceding-element", replace(good, proof=[good.root1, *proof])),
        ("preceding-proof[0]", replace(good, proof=[proof[0], *proof])),
        ("missing-element", replace(good, proof=proof[:-1])),
        ("missing-first-element", replace(good, proof=proof[1:])),
        ("truncated-proof[0]", replace(good, proof=[proof[0][:-1], *proof[1:]])),
        ("wrong-root1-length", replace(good, root1=b"WrongRoot")),
        ("wrong-root2-length", replace(good, root2=b"WrongRoot")),
    ]
    cases += [(name, bad.verify, InvalidProofError) for name, bad in invalid]
    mismatch = [
        ("wrong-root1", replace(good, root1=flip(good.root1, 0, 1))),
        ("wrong-root2", replace(good, root2=flip(good.root2, 0, 1))),
        ("swapped-roots", replace(good, root1=good.root2, root2=good.root1)),
        ("empty-tree-root1", replace(good, root1=EMPTY)),
    ]
    for k in range(len(proof)):
        for bit in (0, 4, 7):
            changed = [*proof[:k], flip(proof[k], 0, bit), *proof[k + 1 :]]
            mismatch.append((f"modified-proof[{k}]-bit-{bit}", replace(good, proof=changed)))
    for k in range(len(proof) - 1):
        if proof[k] != proof[k + 1]:
            swapped = [*proof[:k], proof[k + 1], proof[k], *proof[k + 2 :]]
            mismatch.append((f"swapped-elements[{k},{k + 1}]", replace(good, proof=swapped)))
    cases += [(name, bad.verify, RootMismatchError) for name, bad in mismatch]
    return cases


def good_inclusion(index: int, size: int) -> Inclusion:
    ref = tree()
    return Inclusion(index, size, ref.leaf_hashes[index], ref.path(index, size), ref.root(size))


def good_consistency(size1: int, size2: int) -> Consistency:
    ref = tree()
    return Consistency(size1, size2, ref.proof(size1, size2), ref.root(size1), ref.root(size2))


INCLUSION_CASES = [
    (0, 1),
    (0, 2),
    (1, 2),
    (0, 8),
    (5, 8),
    (2, 3),
    (1, 5),
    (4, 5),
    (12, 13),
    (5, 13),
    (63, 64),
    (64, 65),
    (31, 100),
]
CONSISTENCY_CASES = [
    (1, 2),
    (1, 8),
    (6, 8),
    (2, 5),
    (6, 7),
    (3, 4),
    (4, 5),
    (7, 13),
    (8, 13),
    (32, 33),
    (63, 100),
    (64, 100),
]


def params(cases: list[Mutation], label: str) -> list[object]:
    return [pytest.param(verify, want, id=f"{label}/{name}") for name, verify, want in cases]


class TestVerifyInclusion:
    """verify_inclusion accepts exactly the RFC 9162 audit path and names what is wrong."""

    @pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
    def test_rfc6962_vectors(self, index: int, size: int, proof: list[bytes]) -> None:
        leaf_hash = RFC9162.hash_leaf(RFC6962_LEAVES[index])
        root = bytes.fromhex(RFC6962_ROOTS[size - 1])
        verify_inclusion(RFC9162, index, size, leaf_hash, proof, root)
        assert root_from_inclusion_proof(RFC9162, index, size, leaf_hash, proof) == root

    @pytest.mark.parametrize("size", [pytest.param(n, id=f"size-{n}") for n in range(1, 71)])
    def test_accepts_every_correct_proof(self, size: int) -> None:
        for index in range(size):
            good_inclusion(index, size).verify()
            assert inclusion_proof_length(index, size) == len(path_sides(index, size))

    @pytest.mark.parametrize(
        ("verify", "error"),
        [
            p
            for i, n in INCLUSION_CASES
            for p in params(inclusion_mutations(good_inclusion(i, n)), f"{i}-of-{n}")
        ],
    )
    def test_rejects_mutation(self, verify: Callable[[], None], error: type[ProofError]) -> None:
        with pytest.raises(error):
            verify()

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_rejects_random_mutations(self, data: st.DataObject) -> None:
        size = data.draw(st.integers(1, 300), label="size")
        index = data.draw(st.integers(0, size - 1), label="index")
        mutations = {
            name: (verify, error)
            for name, verify, error in inclusion_mutations(good_inclusion(index, size))
        }
        verify, error = mutations[data.draw(st.sampled_from(sorted(mutations)), label="mutation")]
        with pytest.raises(error):
            verify()

    def test_root_mismatch_message_shows_both_roots(self) -> None:
        good = good_inclusion(3, 10)
        wrong = flip(good.root, 0, 0)
        with pytest.raises(RootMismatchError) as caught:
            replace(good, root=wrong).verify()
        assert caught.value.expected == wrong
        assert caught.value.calculated == good.root
        assert caught.value.tree_size == 10
        assert wrong.hex() in str(caught.value)
        assert good.root.hex() in str(caught.value)
        assert isinstance(caught.value, IntegrityError)

    @pytest.mark.parametrize(
        ("index", "size", "proof", "message"),
        [
            pytest.param(
                10, 10, [], r"0 <= index < size, got index 10 and size 10", id="index>=size"
            ),
            pytest.param(-1, 10, [], r"got index -1 and size 10", id="negative-index"),
            pytest.param(0, 0, [], r"got index 0 and size 0", id="empty-tree"),
            pytest.param(3, 10, [SOME_HASH], r"must have 4 hashes, got 1", id="wrong-length"),
        ],
    )
    def test_precondition_messages_state_the_values(
        self, index: int, size: int, proof: list[bytes], message: str
    ) -> None:
        with pytest.raises(InvalidProofError, match=message):
            verify_inclusion(RFC9162, index, size, SOME_HASH, proof, SOME_HASH)

    def test_size_is_bound_only_through_the_root(self) -> None:
        # Leaf 0 has the same path shape in trees of 7 and 8 leaves, so the proof for size 8
        # also "verifies" for a claimed size 7 against the size-8 root: RFC 9162 binds the size
        # only via the root, which is why proofs are checked against a signed checkpoint's
        # (size, root) pair and never a size taken from elsewhere.
        good = good_inclusion(0, 8)
        replace(good, size=7).verify()
        with pytest.raises(RootMismatchError):
            replace(good, size=7, root=tree().root(7)).verify()

    def test_single_leaf_tree(self) -> None:
        leaf = RFC9162.hash_leaf(b"data")
        verify_inclusion(RFC9162, 0, 1, leaf, [], leaf)
        with pytest.raises(InvalidProofError, match=r"leaf hash must be 32 bytes, got 0"):
            verify_inclusion(RFC9162, 0, 1, b"", [], leaf)
        with pytest.raises(InvalidProofError, match=r"root must be 32 bytes, got 0"):
            verify_inclusion(RFC9162, 0, 1, leaf, [], b"")

    def test_pangea_hasher(self) -> None:
        ref = ReferenceTree(PANGEA_LEGACY, [leaf_data(i) for i in range(11)])
        for index in range(11):
            verify_inclusion(
                PANGEA_LEGACY, index, 11, ref.leaf_hashes[index], ref.path(index, 11), ref.root(11)
            )


class TestVerifyConsistency:
    """verify_consistency accepts exactly RFC 9162's PROOF and names what is wrong."""

    @pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY_VECTORS)
    def test_rfc6962_vectors(self, size1: int, size2: int, proof: list[bytes]) -> None:
        root1 = bytes.fromhex(RFC6962_ROOTS[size1 - 1])
        root2 = bytes.fromhex(RFC6962_ROOTS[size2 - 1])
        verify_consistency(RFC9162, size1, size2, proof, root1, root2)
        assert root_from_consistency_proof(RFC9162, size1, size2, proof, root1) == root2

    @pytest.mark.parametrize("size2", [pytest.param(n, id=f"size2-{n}") for n in range(71)])
    def test_accepts_every_correct_proof(self, size2: int) -> None:
        for size1 in range(size2 + 1):
            good_consistency(size1, size2).verify()

    @pytest.mark.parametrize(
        ("verify", "error"),
        [
            p
            for m, n in CONSISTENCY_CASES
            for p in params(consistency_mutations(good_consistency(m, n)), f"{m}-to-{n}")
        ],
    )
    def test_rejects_mutation(self, verify: Callable[[], None], error: type[ProofError]) -> None:
        with pytest.raises(error):
            verify()

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_rejects_random_mutations(self, data: st.DataObject) -> None:
        size2 = data.draw(st.integers(2, 300), label="size2")
        size1 = data.draw(st.integers(1, size2 - 1), label="size1")
        mutations = {
            name: (verify, error)
            for name, verify, error in consistency_mutations(good_consistency(size1, size2))
        }
        verify, error = mutations[data.draw(st.sampled_from(sorted(mutations)), label="mutation")]
        with pytest.raises(error):
            verify()

    @pytest.mark.parametrize(
        ("size1", "size2", "root1", "root2", "proof", "error"),
        [
            pytest.param(0, 0, EMPTY, EMPTY, [], None, id="empty-to-empty"),
            pytest.param(0, 5, EMPTY, SOME_HASH, [], None, id="empty-to-any"),
            pytest.param(5, 5, SOME_HASH, SOME_HASH, [], None, id="same-size-same-root"),
            pytest.param(5, 5, SOME_HASH, EMPTY, [], RootMismatchError, id="same-size-other-root"),
            pytest.param(
                0, 0, SOME_HASH, SOME_HASH, [], RootMismatchError, id="empty-tree-wrong-root"
            ),
            pytest.param(
                0, 0, EMPTY, SOME_HASH, [], RootMismatchError, id="empty-to-empty-other-root"
            ),
            pytest.param(
                0, 5, SOME_HASH, SOME_HASH, [], RootMismatchError, id="from-empty-wrong-root1"
            ),
            pytest.param(
                0, 5, EMPTY, SOME_HASH, [EMPTY], InvalidProofError, id="from-empty-non-empty-proof"
            ),
            pytest.param(
                5,
                5,
                SOME_HASH,
                SOME_HASH,
                [EMPTY],
                InvalidProofError,
                id="same-size-non-empty-proof",
            ),
            pytest.param(1, 0, SOME_HASH, EMPTY, [], InvalidProofError, id="size1>size2"),
            pytest.param(2, 1, SOME_HASH, SOME_HASH, [], InvalidProofError, id="time-travel"),
            pytest.param(1, 2, SOME_HASH, SOME_HASH, [], InvalidProofError, id="empty-proof"),
            pytest.param(-1, 2, SOME_HASH, SOME_HASH, [], InvalidProofError, id="negative-size1"),
        ],
    )
    def test_edge_cases(
        self,
        size1: int,
        size2: int,
        root1: bytes,
        root2: bytes,
        proof: list[bytes],
        error: type[ProofError] | None,
    ) -> None:
        if error is None:
            verify_consistency(RFC9162, size1, size2, proof, root1, root2)
        else:
            with pytest.raises(error):
                verify_consistency(RFC9162, size1, size2, proof, root1, root2)

    def test_size_precondition_message_states_the_values(self) -> None:
        with pytest.raises(
            InvalidProofError, match=r"0 <= size1 <= size2, got size1 9 and size2 4"
        ):
            verify_consistency(RFC9162, 9, 4, [], SOME_HASH, SOME_HASH)

    def test_mismatch_names_the_tree(self) -> None:
        good = good_consistency(6, 8)
        with pytest.raises(RootMismatchError, match=r"tree of size 6") as caught:
            replace(good, root1=flip(good.root1, 0, 0)).verify()
        assert caught.value.tree_size == 6
        with pytest.raises(RootMismatchError, match=r"tree of size 8"):
            replace(good, root2=flip(good.root2, 0, 0)).verify()

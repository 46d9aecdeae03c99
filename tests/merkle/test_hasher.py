"""Known answers for the two hashers, the foundation every other merkle test stands on."""

from __future__ import annotations

import hashlib

import pytest

from trailkeep.merkle import PANGEA_LEGACY, RFC9162, CompactRange, LogHasher

# RFC 6962 test data as used by transparency-dev/merkle (proof/verify_test.go, testonly).
RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
RFC6962_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# shared/compat/pangea.md §4.3: three envelopes the Pangea SDK verified, and its roots.
PANGEA_ENVELOPES = [
    b'{"event":{"actor":"alice","message":"a"},"received_at":"2024-01-01T00:00:00.000000Z"}',
    b'{"event":{"actor":"alice","message":"b"},"received_at":"2024-01-01T00:00:01.000000Z"}',
    b'{"event":{"actor":"alice","message":"c"},"received_at":"2024-01-01T00:00:02.000000Z"}',
]
PANGEA_LEAVES = [
    "01d9ec86e077bc8498f7bd242395bf2766c1bb4d7d70eabc2af09922f643a342",
    "c782c951d1dd2aff371fe4753f50115d846f499552d663d9bcc2f4c6763813fc",
    "9a0f5aabb325fc013c08451efcad65948e745aa149cb5ba59d1222dc784125dd",
]
PANGEA_ROOT_3 = "6795cca0d5d32bb91a8210e3dc585b25d5cac9ea716d7857ae60e892296429c8"


class TestRfc9162Hasher:
    """RFC9162 prefixes leaves with 0x00, nodes with 0x01, and roots the empty tree at SHA-256()."""

    def test_empty_root_is_sha256_of_nothing(self) -> None:
        assert RFC9162.empty_root().hex() == EMPTY_SHA256

    def test_leaf_hash_of_empty_input(self) -> None:
        assert RFC9162.hash_leaf(b"").hex() == RFC6962_ROOTS[0]

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            pytest.param(b"", hashlib.sha256(b"\x00").digest(), id="empty"),
            pytest.param(b"abc", hashlib.sha256(b"\x00abc").digest(), id="abc"),
        ],
    )
    def test_leaf_is_prefixed_with_zero(self, data: bytes, expected: bytes) -> None:
        assert RFC9162.hash_leaf(data) == expected

    def test_node_is_prefixed_with_one(self) -> None:
        left, right = b"L" * 32, b"R" * 32
        assert RFC9162.hash_children(left, right) == hashlib.sha256(b"\x01" + left + right).digest()

    def test_leaf_and_node_never_collide(self) -> None:
        left, right = b"L" * 32, b"R" * 32
        assert RFC9162.hash_leaf(left + right) != RFC9162.hash_children(left, right)

    @pytest.mark.parametrize("size", [pytest.param(n, id=f"size-{n}") for n in range(1, 9)])
    def test_rfc6962_roots(self, size: int) -> None:
        cr = CompactRange(RFC9162)
        cr.extend(RFC9162.hash_leaf(leaf) for leaf in RFC6962_LEAVES[:size])
        assert cr.root().hex() == RFC6962_ROOTS[size - 1]


class TestPangeaLegacyHasher:
    """PANGEA_LEGACY hashes without prefixes, matching roots the Pangea SDK verified."""

    def test_leaf_and_node_have_no_prefix(self) -> None:
        assert PANGEA_LEGACY.hash_leaf(b"x") == hashlib.sha256(b"x").digest()
        left, right = b"L" * 32, b"R" * 32
        assert PANGEA_LEGACY.hash_children(left, right) == hashlib.sha256(left + right).digest()

    def test_envelope_hashes_are_the_sdk_event_hashes(self) -> None:
        assert [PANGEA_LEGACY.hash_leaf(e).hex() for e in PANGEA_ENVELOPES] == PANGEA_LEAVES

    def test_roots_match_the_sdk_vectors(self) -> None:
        cr = CompactRange(PANGEA_LEGACY)
        cr.append(PANGEA_LEGACY.hash_leaf(PANGEA_ENVELOPES[0]))
        assert cr.root().hex() == PANGEA_LEAVES[0]
        cr.append(PANGEA_LEGACY.hash_leaf(PANGEA_ENVELOPES[1]))
        root2 = cr.root().hex()
        assert root2.startswith("1323c2b4")
        assert root2.endswith("46bd")
        cr.append(PANGEA_LEGACY.hash_leaf(PANGEA_ENVELOPES[2]))
        assert cr.root().hex() == PANGEA_ROOT_3

    def test_empty_root_matches_rfc9162(self) -> None:
        assert PANGEA_LEGACY.empty_root().hex() == EMPTY_SHA256


class TestLogHasherProtocol:
    """Both hashers satisfy LogHasher and return hashes of the length they announce."""

    @pytest.mark.parametrize(
        "hasher",
        [pytest.param(RFC9162, id="rfc9162"), pytest.param(PANGEA_LEGACY, id="pangea-legacy")],
    )
    def test_conforms(self, hasher: LogHasher) -> None:
        assert isinstance(hasher, LogHasher)
        assert hasher.size == 32
        assert len(hasher.empty_root()) == hasher.size
        assert len(hasher.hash_leaf(b"data")) == hasher.size
        assert len(hasher.hash_children(b"a" * 32, b"b" * 32)) == hasher.size

"""C2SP tlog-proof receipts: exact text, strict parsing, and end-to-end verification."""

from __future__ import annotations

import base64
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from trailkeep.errors import InvalidInputError
from trailkeep.merkle import (
    RFC9162,
    Checkpoint,
    InvalidProofError,
    MalformedTlogProofError,
    OriginMismatchError,
    RootMismatchError,
    SignatureError,
    Signer,
    TlogProof,
    UnknownKeyError,
    format_tlog_proof,
    inclusion,
    parse_tlog_proof,
    verify_tlog_proof,
)

from .memstore import MemoryStore
from .reference import leaf_data

ORIGIN = "trailkeep.example/acme"
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(b"\x02" * 32))
SIZE = 21
INDEX = 6


@cache
def store() -> MemoryStore:
    return MemoryStore(RFC9162, [RFC9162.hash_leaf(leaf_data(i)) for i in range(SIZE)])


@cache
def receipt() -> str:
    """What the proof endpoint serves: inclusion nodes from the store and a signed checkpoint."""
    nodes = inclusion(INDEX, SIZE)
    hashes = nodes.rehash(store().get_many(nodes.ids), RFC9162)
    note = SIGNER.sign_note(Checkpoint(ORIGIN, SIZE, store().range.root()).to_body())
    return format_tlog_proof(INDEX, hashes, note)


def leaf_hash(index: int = INDEX) -> bytes:
    return RFC9162.hash_leaf(leaf_data(index))


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


class TestFormat:
    """format_tlog_proof writes the header, optional extra, index, hashes, blank line, note."""

    def test_exact_text(self) -> None:
        note = "log\n1\n" + b64(b"r" * 32) + "\n\n— log AAAAAAA=\n"
        text = format_tlog_proof(73894, [b"a" * 32, b"b" * 32], note, extra=b"age")
        assert text == (
            "c2sp.org/tlog-proof@v1\n"
            "extra YWdl\n"
            "index 73894\n"
            f"{b64(b'a' * 32)}\n"
            f"{b64(b'b' * 32)}\n"
            "\n" + note
        )

    def test_no_extra_line_without_extra(self) -> None:
        assert "extra" not in receipt()
        assert receipt().startswith("c2sp.org/tlog-proof@v1\nindex 6\n")

    @pytest.mark.parametrize(
        ("index", "hashes", "message"),
        [
            pytest.param(-1, [], r"index must be in 0..2\*\*64-1", id="negative-index"),
            pytest.param(2**64, [], r"index must be in", id="index-too-large"),
            pytest.param(0, [b"x" * 31], r"hash \[0\] must be 32 bytes", id="short-hash"),
        ],
    )
    def test_rejects_unwritable_arguments(
        self, index: int, hashes: list[bytes], message: str
    ) -> None:
        with pytest.raises(InvalidInputError, match=message):
            format_tlog_proof(index, hashes, "whatever")


class TestParse:
    """parse_tlog_proof reads exactly what format_tlog_proof writes and rejects everything else."""

    def test_round_trip(self) -> None:
        parsed = parse_tlog_proof(receipt())
        assert parsed.index == INDEX
        assert parsed.extra is None
        assert parsed.checkpoint == receipt().split("\n\n", 1)[1]
        assert parsed.to_text() == receipt()
        assert parse_tlog_proof(receipt().encode()) == parsed

    @given(
        st.integers(0, 2**64 - 1),
        st.lists(st.binary(min_size=32, max_size=32), max_size=5),
        st.none() | st.binary(max_size=40),
    )
    def test_round_trips_any_fields(
        self, index: int, hashes: list[bytes], extra: bytes | None
    ) -> None:
        note = receipt().split("\n\n", 1)[1]
        proof = TlogProof(index, tuple(hashes), note, extra)
        assert parse_tlog_proof(proof.to_text()) == proof

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            pytest.param(
                lambda t: "garbage\n" + t, r"must start with the line", id="garbage-before"
            ),
            pytest.param(lambda t: "\n" + t, r"must start with the line", id="blank-line-before"),
            pytest.param(lambda t: t.replace("@v1", "@v2", 1), r"must start", id="wrong-version"),
            pytest.param(
                lambda t: t.replace("@v1\n", "@v1 \n", 1),
                r"must start",
                id="trailing-space-in-header",
            ),
            pytest.param(lambda t: t.replace("\n", "\r\n"), r"must start", id="crlf"),
            pytest.param(
                lambda t: t.replace("index 6\n", "", 1), r"is not 'index", id="missing-index"
            ),
            pytest.param(
                lambda t: t.replace("index 6", "index 06", 1),
                r"'index 06'",
                id="index-leading-zero",
            ),
            pytest.param(
                lambda t: t.replace("index 6", "index -6", 1), r"'index -6'", id="negative-index"
            ),
            pytest.param(
                lambda t: t.replace("index 6", "index  6", 1), r"'index  6'", id="double-space"
            ),
            pytest.param(
                lambda t: t.replace("index 6", "index 0x6", 1), r"'index 0x6'", id="hex-index"
            ),
            pytest.param(
                lambda t: t.replace("index 6", "index6", 1), r"'index6'", id="no-space-after-index"
            ),
            pytest.param(
                lambda t: t.replace("index 6", f"index {2**64}", 1),
                r"below 2\*\*64",
                id="index-too-large",
            ),
            pytest.param(
                lambda t: t.replace("index 6\n", "index 6\nindex 6\n", 1),
                r"hash \[0\] 'index 6'",
                id="repeated-index",
            ),
            pytest.param(
                lambda t: t.replace("@v1\n", "@v1\nextra !!!\n", 1),
                r"extra data is not canonical base64",
                id="bad-extra",
            ),
            pytest.param(
                lambda t: t.replace("@v1\n", "@v1\nextra YWdm\nextra YWdm\n", 1),
                r"is not 'index",
                id="repeated-extra",
            ),
            pytest.param(
                lambda t: t.replace("index 6\n", "index 6\nextra YWdm\n", 1),
                r"hash \[0\] 'extra YWdm'",
                id="extra-after-index",
            ),
            pytest.param(
                lambda t: _change_first_hash(t, lambda h: h[:-1]),
                r"hash \[0\]",
                id="bad-hash-base64",
            ),
            pytest.param(
                lambda t: _change_first_hash(t, lambda h: b64(b"x" * 31)),
                r"hash \[0\] .* 32 bytes",
                id="short-hash",
            ),
            pytest.param(
                lambda t: _change_first_hash(t, lambda h: b64(b"x" * 33)),
                r"hash \[0\] .* 32 bytes",
                id="long-hash",
            ),
            pytest.param(
                lambda t: _change_first_hash(t, lambda h: " " + h),
                r"hash \[0\]",
                id="space-before-hash",
            ),
            pytest.param(
                lambda t: t.split("\n\n", 1)[0] + "\n",
                r"ends before the blank line",
                id="missing-checkpoint",
            ),
            pytest.param(
                lambda t: t.split("\n\n", 1)[0],
                r"ends before the blank line",
                id="truncated-in-hashes",
            ),
            pytest.param(
                lambda t: t.replace("\n\n", "\n\n\n", 1), r"checkpoint: ", id="two-blank-lines"
            ),
            pytest.param(
                lambda t: t + "garbage\n", r"checkpoint: signature line", id="garbage-after"
            ),
            pytest.param(
                lambda t: t[:-1],
                r"checkpoint: note does not end with a newline",
                id="missing-final-newline",
            ),
            pytest.param(
                lambda t: t.split("\n\n", 1)[0] + "\n\nhello\n\n— x AAAAAAA=\n",
                r"checkpoint: checkpoint has 1 lines",
                id="note-not-a-checkpoint",
            ),
            pytest.param(
                lambda t: t.rsplit("\n\n", 1)[0] + "\n", r"checkpoint: ", id="unsigned-checkpoint"
            ),
            pytest.param(
                lambda t: "c2sp.org/tlog-proof@v1", r"ends before the index", id="header-only"
            ),
            pytest.param(lambda t: "", r"must start", id="empty"),
        ],
    )
    def test_rejects(self, mutate: object, message: str) -> None:
        assert callable(mutate)
        with pytest.raises(MalformedTlogProofError, match=message):
            parse_tlog_proof(mutate(receipt()))

    def test_rejects_invalid_utf8(self) -> None:
        with pytest.raises(MalformedTlogProofError, match=r"not valid UTF-8"):
            parse_tlog_proof(b"\xff" + receipt().encode())

    def test_accepts_empty_extra_and_no_hashes(self) -> None:
        note = receipt().split("\n\n", 1)[1]
        text = format_tlog_proof(0, [], note, extra=b"")
        assert text.startswith("c2sp.org/tlog-proof@v1\nextra \nindex 0\n\n")
        assert parse_tlog_proof(text) == TlogProof(0, (), note, b"")


def _change_first_hash(text: str, change: object) -> str:
    assert callable(change)
    lines = text.split("\n")
    lines[2] = change(lines[2])
    return "\n".join(lines)


class TestVerify:
    """verify_tlog_proof checks the checkpoint signature, then the leaf's inclusion."""

    def test_accepts_the_receipt(self) -> None:
        cp = verify_tlog_proof(parse_tlog_proof(receipt()), leaf_hash(), SIGNER.verifier(), ORIGIN)
        assert (cp.origin, cp.size, cp.root_hash) == (ORIGIN, SIZE, store().range.root())

    def test_rejects_another_leaf(self) -> None:
        with pytest.raises(RootMismatchError):
            verify_tlog_proof(parse_tlog_proof(receipt()), leaf_hash(INDEX + 1), SIGNER.verifier())

    def test_rejects_another_index(self) -> None:
        proof = parse_tlog_proof(receipt())
        moved = TlogProof(INDEX + 1, proof.hashes, proof.checkpoint)
        with pytest.raises(RootMismatchError):
            verify_tlog_proof(moved, leaf_hash(), SIGNER.verifier())

    def test_rejects_index_beyond_the_checkpoint(self) -> None:
        proof = parse_tlog_proof(receipt())
        with pytest.raises(InvalidProofError, match=r"got index 21 and size 21"):
            verify_tlog_proof(
                TlogProof(SIZE, proof.hashes, proof.checkpoint), leaf_hash(), SIGNER.verifier()
            )

    def test_rejects_dropped_hash(self) -> None:
        proof = parse_tlog_proof(receipt())
        with pytest.raises(InvalidProofError, match=r"must have 5 hashes, got 4"):
            verify_tlog_proof(
                TlogProof(INDEX, proof.hashes[:-1], proof.checkpoint),
                leaf_hash(),
                SIGNER.verifier(),
            )

    def test_rejects_a_tampered_checkpoint(self) -> None:
        tampered = receipt().replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n")
        with pytest.raises(SignatureError):
            verify_tlog_proof(parse_tlog_proof(tampered), leaf_hash(), SIGNER.verifier())

    def test_rejects_another_key(self) -> None:
        with pytest.raises(UnknownKeyError):
            verify_tlog_proof(
                parse_tlog_proof(receipt()), leaf_hash(), Signer.generate(ORIGIN).verifier()
            )

    def test_rejects_another_origin(self) -> None:
        with pytest.raises(OriginMismatchError):
            verify_tlog_proof(
                parse_tlog_proof(receipt()), leaf_hash(), SIGNER.verifier(), "other/log"
            )

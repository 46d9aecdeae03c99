"""C2SP checkpoints: exact body format, strict parsing, and opening a signed checkpoint."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from trailkeep.errors import InvalidInputError
from trailkeep.merkle import (
    Checkpoint,
    MalformedCheckpointError,
    MalformedNoteError,
    OriginMismatchError,
    Signer,
    UnknownKeyError,
    open_checkpoint,
)

from .strategies import checkpoint_lines

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
ORIGIN = "trailkeep.example/acme"
BODY = f"{ORIGIN}\n42\n{ROOT_B64}\n"
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))


class TestCheckpointBody:
    """to_body writes the three C2SP lines (plus extensions) and parse reads exactly that."""

    def test_body_format(self) -> None:
        assert Checkpoint(ORIGIN, 42, ROOT).to_body() == BODY

    def test_extensions_follow_the_root(self) -> None:
        cp = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
        assert cp.to_body() == f"{ORIGIN}\n0\n{ROOT_B64}\next one\next two\n"
        assert Checkpoint.parse(cp.to_body()) == cp

    def test_parses_the_c2sp_example(self) -> None:
        body = (
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        )
        cp = Checkpoint.parse(body)
        assert (cp.origin, cp.size, cp.extensions) == ("example.com/behind-the-sofa", 20852163, ())
        assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        assert cp.to_body() == body

    @given(
        checkpoint_lines(),
        st.integers(0, 2**64 - 1),
        st.binary(min_size=32, max_size=32),
        st.lists(checkpoint_lines(), max_size=3),
    )
    def test_round_trips(self, origin: str, size: int, root: bytes, ext: list[str]) -> None:
        cp = Checkpoint(origin, size, root, tuple(ext))
        assert Checkpoint.parse(cp.to_body()) == cp

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            pytest.param(BODY[:-1], r"does not end with a newline", id="missing-final-newline"),
            pytest.param(f"{ORIGIN}\n42\n", r"has 2 lines", id="missing-root-line"),
            pytest.param("", r"does not end with a newline", id="empty"),
            pytest.param(f"\n42\n{ROOT_B64}\n", r"origin is empty", id="empty-origin"),
            pytest.param(f"{ORIGIN}\n042\n{ROOT_B64}\n", r"size line '042'", id="leading-zero"),
            pytest.param(f"{ORIGIN}\n+42\n{ROOT_B64}\n", r"size line", id="plus-sign"),
            pytest.param(f"{ORIGIN}\n-1\n{ROOT_B64}\n", r"size line", id="negative-size"),
            pytest.param(f"{ORIGIN}\n 42\n{ROOT_B64}\n", r"size line", id="space-in-size"),
            pytest.param(f"{ORIGIN}\n4_2\n{ROOT_B64}\n", r"size line", id="underscore-in-size"),
            pytest.param(f"{ORIGIN}\n٤٢\n{ROOT_B64}\n", r"size line", id="arabic-digits"),
            pytest.param(f"{ORIGIN}\n0x2a\n{ROOT_B64}\n", r"size line", id="hex-size"),
            pytest.param(f"{ORIGIN}\n\n{ROOT_B64}\n", r"size line ''", id="empty-size"),
            pytest.param(f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n", r"below 2\*\*64", id="size-2**64"),
            pytest.param(f"{ORIGIN}\n42\n{ROOT_B64[:-1]}\n", r"root line", id="bad-base64"),
            pytest.param(
                f"{ORIGIN}\n42\n{ROOT_B64[:-2]}==\n", r"root line", id="non-canonical-base64"
            ),
            pytest.param(f"{ORIGIN}\n42\n {ROOT_B64}\n", r"root line", id="space-in-root"),
            pytest.param(
                f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n",
                r"root hash is 31 bytes, want 32",
                id="short-root",
            ),
            pytest.param(
                f"{ORIGIN}\n42\n{base64.b64encode(ROOT + b'!').decode()}\n",
                r"root hash is 33 bytes, want 32",
                id="long-root",
            ),
            pytest.param(BODY + "\n", r"extension line 0 is empty", id="trailing-blank-line"),
            pytest.param(BODY + "ext\n\n", r"extension line 1 is empty", id="blank-extension-line"),
            pytest.param(BODY.replace("\n", "\r\n"), r"size line '42\\r'", id="crlf"),
            pytest.param(f"{ORIGIN}\t\n42\n{ROOT_B64}\n", r"control character", id="tab-in-origin"),
        ],
    )
    def test_rejects(self, body: str, message: str) -> None:
        with pytest.raises(MalformedCheckpointError, match=message):
            Checkpoint.parse(body)

    @pytest.mark.parametrize(
        ("origin", "size", "root", "extensions"),
        [
            pytest.param("", 1, ROOT, (), id="empty-origin"),
            pytest.param("a\nb", 1, ROOT, (), id="newline-in-origin"),
            pytest.param(ORIGIN, -1, ROOT, (), id="negative-size"),
            pytest.param(ORIGIN, 2**64, ROOT, (), id="size-too-large"),
            pytest.param(ORIGIN, 1, ROOT[:31], (), id="short-root"),
            pytest.param(ORIGIN, 1, ROOT, ("",), id="empty-extension"),
        ],
    )
    def test_construction_validates(
        self, origin: str, size: int, root: bytes, extensions: tuple[str, ...]
    ) -> None:
        with pytest.raises(InvalidInputError, match=r"invalid checkpoint"):
            Checkpoint(origin, size, root, extensions)


class TestOpenCheckpoint:
    """open_checkpoint returns the checkpoint only if our key signed it for the expected log."""

    def test_opens_a_signed_checkpoint(self) -> None:
        note = SIGNER.sign_note(BODY)
        assert open_checkpoint(note, SIGNER.verifier(), ORIGIN) == Checkpoint(ORIGIN, 42, ROOT)

    def test_rejects_another_origin(self) -> None:
        note = SIGNER.sign_note(BODY)
        with pytest.raises(OriginMismatchError, match=r"'trailkeep.example/acme' is not"):
            open_checkpoint(note, SIGNER.verifier(), "trailkeep.example/other")

    def test_rejects_another_key(self) -> None:
        note = Signer.generate(ORIGIN).sign_note(BODY)
        with pytest.raises(UnknownKeyError):
            open_checkpoint(note, SIGNER.verifier(), ORIGIN)

    def test_rejects_signed_text_that_is_not_a_checkpoint(self) -> None:
        note = SIGNER.sign_note("hello\n")
        with pytest.raises(MalformedCheckpointError):
            open_checkpoint(note, SIGNER.verifier())

    def test_malformed_checkpoint_is_a_malformed_note(self) -> None:
        assert issubclass(MalformedCheckpointError, MalformedNoteError)

"""C2SP signed notes: golden vectors from golang.org/x/mod/sumdb/note, and every malformation."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings

from trailkeep.errors import IntegrityError, InvalidInputError
from trailkeep.merkle import (
    InvalidKeyError,
    MalformedNoteError,
    NoteSignature,
    SignatureError,
    Signer,
    UnknownKeyError,
    Verifier,
    ed25519_key_id,
    parse_note,
)

from .strategies import key_names, note_texts

# golang.org/x/mod/sumdb/note note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6"
    "KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WW"
    "d1RvMc+QQ=\n"
)
PETER_NOTE = TEXT + "\n" + PETER_SIG


class TestGoldenVectors:
    """Our keys, key ids and signatures match sumdb/note byte for byte."""

    def test_signing_reproduces_the_published_note(self) -> None:
        assert Signer.parse(PETER_SKEY).sign_note(TEXT) == PETER_NOTE

    def test_verifying_the_published_note(self) -> None:
        assert Verifier.parse(PETER_VKEY).verify_note(PETER_NOTE) == TEXT

    def test_key_strings_round_trip(self) -> None:
        signer = Signer.parse(PETER_SKEY)
        assert signer.key_string() == PETER_SKEY
        assert signer.verifier().key_string() == PETER_VKEY
        assert Verifier.parse(PETER_VKEY).key_string() == PETER_VKEY
        assert signer.key_id.hex() == "c74f20a3"

    def test_key_id_formula(self) -> None:
        verifier = Verifier.parse(PETER_VKEY)
        assert ed25519_key_id("PeterNeumann", verifier.public_key).hex() == "c74f20a3"
        assert Verifier.parse(ENOCH_VKEY).key_id.hex() == "af0cfe78"

    def test_two_signers_each_verifiable_alone(self) -> None:
        note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
        assert Verifier.parse(PETER_VKEY).verify_note(note) == TEXT
        assert Verifier.parse(ENOCH_VKEY).verify_note(note) == TEXT

    def test_accepts_bytes(self) -> None:
        assert Verifier.parse(PETER_VKEY).verify_note(PETER_NOTE.encode()) == TEXT


class TestVerifyNote:
    """verify_note ignores other keys, insists on one good signature, and types each failure."""

    def test_rejects_modified_text(self) -> None:
        note = PETER_NOTE.replace("cryptography", "cryptographY")
        with pytest.raises(SignatureError, match=r"PeterNeumann\+c74f20a3"):
            Verifier.parse(PETER_VKEY).verify_note(note)

    def test_rejects_text_with_garbage_before(self) -> None:
        with pytest.raises(SignatureError):
            Verifier.parse(PETER_VKEY).verify_note("garbage\n" + PETER_NOTE)

    def test_rejects_corrupted_signature(self) -> None:
        corrupted = PETER_SIG[:58] + "ABCD" + PETER_SIG[58:]
        with pytest.raises(SignatureError):
            Verifier.parse(PETER_VKEY).verify_note(TEXT + "\n" + corrupted)

    def test_rejects_note_signed_only_by_others(self) -> None:
        with pytest.raises(UnknownKeyError, match=r"no signature by key PeterNeumann\+c74f20a3"):
            Verifier.parse(PETER_VKEY).verify_note(TEXT + "\n" + ENOCH_SIG)

    def test_ignores_same_name_with_other_key_id(self) -> None:
        impostor = Signer("PeterNeumann", Ed25519PrivateKey.generate())
        note = impostor.sign_note(TEXT)
        with pytest.raises(UnknownKeyError, match=r"signed by PeterNeumann\+"):
            Verifier.parse(PETER_VKEY).verify_note(note)

    def test_rejects_other_key_claiming_our_key_id(self) -> None:
        impostor = Signer("PeterNeumann", Ed25519PrivateKey.generate())
        sig = parse_note(impostor.sign_note(TEXT)).signatures[0]
        forged = NoteSignature(sig.name, bytes.fromhex("c74f20a3"), sig.signature)
        with pytest.raises(SignatureError):
            Verifier.parse(PETER_VKEY).verify_note(TEXT + "\n" + forged.to_line())

    def test_ignores_other_name_with_our_key_id(self) -> None:
        renamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
        with pytest.raises(UnknownKeyError):
            Verifier.parse(PETER_VKEY).verify_note(TEXT + "\n" + renamed)

    def test_every_signature_by_our_key_must_verify(self) -> None:
        bad = PETER_SIG[:58] + "ABCD" + PETER_SIG[58:]
        verifier = Verifier.parse(PETER_VKEY)
        assert verifier.verify_note(TEXT + "\n" + PETER_SIG + PETER_SIG) == TEXT
        with pytest.raises(SignatureError):
            verifier.verify_note(TEXT + "\n" + PETER_SIG + bad)

    def test_wrong_length_signature_is_a_signature_error(self) -> None:
        line = NoteSignature("PeterNeumann", bytes.fromhex("c74f20a3"), b"short").to_line()
        with pytest.raises(SignatureError):
            Verifier.parse(PETER_VKEY).verify_note(TEXT + "\n" + line)

    def test_every_failure_is_an_integrity_error(self) -> None:
        assert issubclass(SignatureError, IntegrityError)
        assert issubclass(UnknownKeyError, IntegrityError)
        assert issubclass(MalformedNoteError, IntegrityError)


class TestParseNote:
    """parse_note accepts exactly the signed-note syntax and says what is wrong."""

    @pytest.mark.parametrize(
        ("note", "message"),
        [
            pytest.param(TEXT, r"no blank line", id="no-signatures"),
            pytest.param(TEXT + "\n", r"no signature lines", id="blank-line-only"),
            pytest.param(
                TEXT + "\n" + PETER_SIG[:-1],
                r"does not end with a newline",
                id="missing-final-newline",
            ),
            pytest.param("\x01" + PETER_NOTE, r"U\+0001 at offset 0", id="control-character"),
            pytest.param(PETER_NOTE.replace("\n", "\r\n"), r"U\+000D", id="crlf"),
            pytest.param(PETER_NOTE.replace(" you", "\tyou", 1), r"U\+0009", id="tab"),
            pytest.param("\ud800" + PETER_NOTE, r"U\+D800", id="lone-surrogate"),
            pytest.param(
                TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
                r"line 1 does not start",
                id="garbage-after",
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG + "\n", r"no signature lines", id="trailing-blank-line"
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("— ", "\u2013 "), r"em dash", id="en-dash"
            ),
            pytest.param(TEXT + "\n" + PETER_SIG.replace("— ", "-- "), r"em dash", id="hyphens"),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("— ", "—"), r"em dash", id="no-space-after-dash"
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
                r"not canonical base64",
                id="name-with-space",
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("PeterNeumann ", "PeterNeumann"),
                r"no valid key name",
                id="no-space-before-signature",
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
                r"no valid key name",
                id="name-with-plus",
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("PeterNeumann", ""),
                r"no valid key name",
                id="empty-name",
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),
                r"not canonical base64",
                id="non-canonical-base64",
            ),
            pytest.param(
                TEXT + "\n" + PETER_SIG.replace("AM=", "A"),
                r"not canonical base64",
                id="bad-padding",
            ),
            pytest.param(TEXT + "\n— PeterNeumann AAAAAA==\n", r"has 4 bytes", id="key-id-only"),
            pytest.param(TEXT + "\n— PeterNeumann \n", r"has 0 bytes", id="empty-signature"),
            pytest.param(
                TEXT + "\n" + PETER_SIG * 101, r"101 signature lines", id="too-many-signatures"
            ),
        ],
    )
    def test_rejects(self, note: str, message: str) -> None:
        with pytest.raises(MalformedNoteError, match=message):
            parse_note(note)
        with pytest.raises(MalformedNoteError):
            Verifier.parse(PETER_VKEY).verify_note(note)

    def test_rejects_invalid_utf8(self) -> None:
        with pytest.raises(MalformedNoteError, match=r"not valid UTF-8 at byte 0"):
            parse_note(b"\xff" + PETER_NOTE.encode())

    def test_accepts_a_hundred_signatures(self) -> None:
        assert len(parse_note(TEXT + "\n" + PETER_SIG * 100).signatures) == 100

    def test_text_may_contain_blank_lines(self) -> None:
        text = "first\n\nsecond\n\n"
        note = Signer.parse(PETER_SKEY).sign_note(text)
        assert parse_note(note).text == text
        assert Verifier.parse(PETER_VKEY).verify_note(note) == text

    def test_splits_fields(self) -> None:
        parsed = parse_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG)
        assert parsed.text == TEXT
        assert [(s.name, s.key_id.hex(), len(s.signature)) for s in parsed.signatures] == [
            ("PeterNeumann", "c74f20a3", 64),
            ("EnochRoot", "af0cfe78", 64),
        ]
        assert parsed.to_text() == TEXT + "\n" + PETER_SIG + ENOCH_SIG


class TestKeyStrings:
    """Key strings parse only in their exact form, as sumdb/note's mangling tests require."""

    def test_every_substring_of_the_verifier_key_is_rejected(self) -> None:
        for i in range(len(PETER_VKEY) + 1):
            for j in range(i + 1, len(PETER_VKEY) + 1):
                if (i, j) != (0, len(PETER_VKEY)):
                    with pytest.raises(InvalidKeyError):
                        Verifier.parse(PETER_VKEY[i:j])

    def test_every_changed_character_of_the_verifier_key_is_rejected(self) -> None:
        for i, ch in enumerate(PETER_VKEY):
            with pytest.raises(InvalidKeyError):
                Verifier.parse(PETER_VKEY[:i] + chr(ord(ch) + 1) + PETER_VKEY[i + 1 :])

    def test_every_mangled_signer_key_is_rejected(self) -> None:
        for i in range(len(PETER_SKEY) + 1):
            for j in range(i + 1, len(PETER_SKEY) + 1):
                if (i, j) != (0, len(PETER_SKEY)):
                    with pytest.raises(InvalidKeyError):
                        Signer.parse(PETER_SKEY[i:j])
        for i, ch in enumerate(PETER_SKEY):
            with pytest.raises(InvalidKeyError):
                Signer.parse(PETER_SKEY[:i] + chr(ord(ch) + 1) + PETER_SKEY[i + 1 :])

    @pytest.mark.parametrize(
        ("vkey", "message"),
        [
            pytest.param(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                r"not canonical base64",
                id="wrong-length-key-adjusted-id",
            ),
            pytest.param(
                "PeterNeumann+7d6b0b40+" + base64.b64encode(b"\x01" + b"k" * 31).decode(),
                r"31 bytes, want 32",
                id="short-key",
            ),
            pytest.param(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                r"unsupported signature type 0x65",
                id="unknown-algorithm-adjusted-id",
            ),
            pytest.param(
                "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                r"8 lowercase hex digits",
                id="uppercase-key-id",
            ),
            pytest.param(
                "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                r"key id c74f20a4 does not match its name and key \(c74f20a3\)",
                id="key-id-mismatch",
            ),
            pytest.param("", r"invalid name", id="empty"),
        ],
    )
    def test_rejects_verifier_key(self, vkey: str, message: str) -> None:
        with pytest.raises(InvalidKeyError, match=message):
            Verifier.parse(vkey)

    def test_invalid_key_is_invalid_input(self) -> None:
        assert issubclass(InvalidKeyError, InvalidInputError)


class TestSigner:
    """A Signer signs any valid text so that its own Verifier returns the text unchanged."""

    @settings(max_examples=60, deadline=None)
    @given(key_names(), note_texts())
    def test_sign_then_verify_round_trips(self, name: str, text: str) -> None:
        signer = Signer(name, Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
        note = signer.sign_note(text)
        assert parse_note(note).to_text() == note
        assert signer.verifier().verify_note(note) == text
        assert Verifier.parse(signer.verifier().key_string()) == signer.verifier()
        assert Signer.parse(signer.key_string()).sign_note(text) == note

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            pytest.param("", r"must end with a newline", id="empty"),
            pytest.param("no newline", r"must end with a newline", id="no-final-newline"),
            pytest.param("a\rb\n", r"U\+000D at offset 1", id="carriage-return"),
        ],
    )
    def test_rejects_text_that_cannot_be_a_note(self, text: str, message: str) -> None:
        with pytest.raises(InvalidInputError, match=message):
            Signer.generate("log.example").sign_note(text)

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("", id="empty"),
            pytest.param("a b", id="space"),
            pytest.param("a+b", id="plus"),
            pytest.param("a\u00a0b", id="no-break-space"),
            pytest.param("a\nb", id="newline"),
        ],
    )
    def test_rejects_invalid_names(self, name: str) -> None:
        with pytest.raises(InvalidKeyError):
            Signer.generate(name)
        with pytest.raises(InvalidKeyError):
            Verifier(name, b"\x00" * 32)

    def test_repr_hides_the_private_key(self) -> None:
        signer = Signer.parse(PETER_SKEY)
        assert "AYEKFALV" not in repr(signer)
        assert repr(signer) == "Signer(name='PeterNeumann')"

    def test_generated_keys_differ(self) -> None:
        assert Signer.generate("x").key_string() != Signer.generate("x").key_string()

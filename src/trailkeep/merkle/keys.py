"""Ed25519 note keys: the Signer that signs checkpoints and the Verifier that checks them.

Keys are written as golang.org/x/mod/sumdb/note writes them, so Go verifiers and witnesses accept
our checkpoints and we accept theirs::

    verifier key  <name>+<hex8 key id>+<base64(0x01 ‖ 32-byte public key)>
    signer key    PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 ‖ 32-byte seed)>
    key id        SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]

Verification follows c2sp.org/signed-note: signatures by other keys are ignored (they may be
witnesses' cosignatures), every signature by the trusted key must verify, and at least one must
exist. sumdb/note checks only the first of repeated signatures by one key; we check them all.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trailkeep.errors import InvalidInputError
from trailkeep.merkle._text import b64decode_canonical, find_forbidden_character
from trailkeep.merkle.errors import InvalidKeyError, SignatureError, UnknownKeyError
from trailkeep.merkle.note import NoteSignature, SignedNote, is_valid_key_name, parse_note

__all__ = ["ALG_ED25519", "Signer", "Verifier", "ed25519_key_id"]

ALG_ED25519: Final = 0x01
"""The signed-note signature type byte of Ed25519."""

_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_KEY_ID_HEX: Final = re.compile(r"[0-9a-f]{8}")


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte id of an Ed25519 note key: ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``."""
    return sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class Verifier:
    """The public half of an Ed25519 note key: checks notes signed by that key.

    Attributes:
        name: the key name, e.g. the log's origin ``trailkeep.example/acme``.
        public_key: the raw 32-byte Ed25519 public key.
        key_id: derived from both, see ``ed25519_key_id``.
    """

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise InvalidKeyError(f"invalid note key name {self.name!r}")
        if len(self.public_key) != 32:
            raise InvalidKeyError(f"an Ed25519 public key is 32 bytes, got {len(self.public_key)}")
        object.__setattr__(self, "key_id", ed25519_key_id(self.name, self.public_key))

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read a verifier key string ``<name>+<hex8>+<base64(0x01 ‖ key)>``.

        Raises:
            InvalidKeyError: the string is malformed, of another algorithm, or its key id does
                not match its name and key.
        """
        name, key = _parse_key_string(vkey, "verifier")
        return cls(name, key)

    def key_string(self) -> str:
        """The verifier key string, the form to publish and to pin (``/v1/log/key``)."""
        return _key_string(self.name, self.key_id, self.public_key)

    def verify_note(self, note: str | bytes) -> str:
        """Return the text of ``note`` after checking its signatures by this key.

        Raises:
            MalformedNoteError: the note breaks the signed-note syntax.
            UnknownKeyError: no signature line carries this key's name and key id.
            SignatureError: a signature line by this key does not verify over the text.
        """
        parsed = parse_note(note)
        mine = [s for s in parsed.signatures if s.name == self.name and s.key_id == self.key_id]
        if not mine:
            signers = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in parsed.signatures)
            raise UnknownKeyError(
                f"note has no signature by key {self.name}+{self.key_id.hex()} "
                f"(signed by {signers})"
            )
        public_key = Ed25519PublicKey.from_public_bytes(self.public_key)
        message = parsed.text.encode("utf-8")
        for sig in mine:
            try:
                public_key.verify(sig.signature, message)
            except InvalidSignature:
                raise SignatureError(
                    f"invalid signature for key {self.name}+{self.key_id.hex()}"
                ) from None
        return parsed.text


@dataclass(frozen=True, slots=True, eq=False)
class Signer:
    """An Ed25519 note key that signs notes (checkpoints) under a name.

    Attributes:
        name: the key name; C2SP recommends the log's origin.
        private_key: the Ed25519 key; never shown by ``repr``.
    """

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise InvalidKeyError(f"invalid note key name {self.name!r}")

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new random key, for the first start of a server."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Read a signer key string ``PRIVATE+KEY+<name>+<hex8>+<base64(0x01 ‖ seed)>``.

        Raises:
            InvalidKeyError: the string is malformed, or its key id does not match the key.
        """
        if not skey.startswith(_PRIVATE_PREFIX):
            raise InvalidKeyError("signer key does not start with PRIVATE+KEY+")
        name, seed, key_id = _split_key_string(skey[len(_PRIVATE_PREFIX) :], "signer")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != key_id:
            raise InvalidKeyError(
                f"signer key id {key_id.hex()} does not match its name and key "
                f"({signer.key_id.hex()})"
            )
        return signer

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id, as in the verifier key."""
        return self.verifier().key_id

    def verifier(self) -> Verifier:
        """The matching verifier, to publish."""
        public = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, public)

    def key_string(self) -> str:
        """The secret signer key string, for the key file; treat it like the key itself."""
        seed = self.private_key.private_bytes_raw()
        return _PRIVATE_PREFIX + _key_string(self.name, self.key_id, seed)

    def sign_note(self, text: str) -> str:
        """Sign ``text`` and return the note: text, blank line, one signature line.

        Args:
            text: non-empty, ends with a newline, no control characters but newlines.

        Raises:
            InvalidInputError: the text cannot be a note's text.
        """
        if not text.endswith("\n"):
            raise InvalidInputError("note text must end with a newline")
        bad = find_forbidden_character(text)
        if bad is not None:
            raise InvalidInputError(
                f"note text contains forbidden character U+{ord(text[bad]):04X} at offset {bad}"
            )
        signature = self.private_key.sign(text.encode("utf-8"))
        return SignedNote(text, (NoteSignature(self.name, self.key_id, signature),)).to_text()


def _key_string(name: str, key_id: bytes, key: bytes) -> str:
    blob = base64.b64encode(bytes([ALG_ED25519]) + key).decode("ascii")
    return f"{name}+{key_id.hex()}+{blob}"


def _parse_key_string(vkey: str, kind: str) -> tuple[str, bytes]:
    name, key, key_id = _split_key_string(vkey, kind)
    if ed25519_key_id(name, key) != key_id:
        raise InvalidKeyError(
            f"{kind} key id {key_id.hex()} does not match its name and key "
            f"({ed25519_key_id(name, key).hex()})"
        )
    return name, key


def _split_key_string(value: str, kind: str) -> tuple[str, bytes, bytes]:
    """Split ``<name>+<hex8>+<base64(0x01 ‖ 32 bytes)>`` into name, 32 bytes and key id."""
    name, _, rest = value.partition("+")
    hex_id, plus, blob = rest.partition("+")
    if not is_valid_key_name(name):
        raise InvalidKeyError(f"{kind} key has an invalid name {name!r}")
    if not plus or not _KEY_ID_HEX.fullmatch(hex_id):
        raise InvalidKeyError(f"{kind} key id must be 8 lowercase hex digits, got {hex_id!r}")
    raw = b64decode_canonical(blob)
    if raw is None or not raw:
        raise InvalidKeyError(f"{kind} key material is not canonical base64")
    if raw[0] != ALG_ED25519:
        raise InvalidKeyError(f"{kind} key has unsupported signature type 0x{raw[0]:02x}")
    if len(raw) != 33:
        raise InvalidKeyError(f"{kind} key material is {len(raw) - 1} bytes, want 32")
    return name, raw[1:], bytes.fromhex(hex_id)

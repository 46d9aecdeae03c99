"""Client-side Ed25519 signatures over an event's canonical content.

A client may sign what it sends so that a reader can check the event came from the holder of a
key, independently of the server. The signed bytes are ``JCS(content without "signature")``,
where ``content`` is the event **as the server stores it**: the client fields, nulls removed,
``timestamp`` in the fixed-width form (``2026-11-23T10:00:05.123456Z``) and ``outcome`` present.
A signing client therefore sends both fields explicitly in that form; :func:`sign_content` does
the normalization for the SDK. Server fields (``id``, ``seq``...) are never signed: the Merkle
tree covers them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trailkeep.errors import IntegrityError, ValidationFailedError
from trailkeep.model.canonical import jcs

__all__ = ["ALG", "SignatureMismatchError", "sign_content", "signed_bytes", "verify_signature"]

ALG: Final = "ed25519"


class SignatureMismatchError(IntegrityError):
    """The event's client signature does not verify over its content."""

    code = "BAD_SIGNATURE"


def signed_bytes(content: dict[str, Any]) -> bytes:
    """The bytes a client signature covers: JCS of the content minus ``signature``."""
    return jcs({k: v for k, v in content.items() if k != "signature"})


def sign_content(content: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, str]:
    """The ``signature`` object for ``content`` (which must already be in stored form)."""
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "alg": ALG,
        "public_key": base64.b64encode(public).decode(),
        "sig": base64.b64encode(key.sign(signed_bytes(content))).decode(),
    }


def _decode(value: Any, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise ValidationFailedError(f"signature.{what} must be {size} bytes in base64")
    return raw


def verify_signature(content: dict[str, Any]) -> None:
    """Check ``content["signature"]`` over the rest of ``content``.

    Raises:
        ValidationFailedError: the signature object is malformed.
        SignatureMismatchError: it is well-formed but does not verify.
    """
    signature = content.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != ALG:
        raise ValidationFailedError(f"signature.alg must be {ALG!r}")
    public = _decode(signature.get("public_key"), 32, "public_key")
    sig = _decode(signature.get("sig"), 64, "sig")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, signed_bytes(content))
    except InvalidSignature:
        raise SignatureMismatchError(
            "signature does not verify over the event's canonical content; sign the event as"
            " stored (timestamp as YYYY-MM-DDTHH:MM:SS.ffffffZ, outcome present, nulls removed)"
        ) from None

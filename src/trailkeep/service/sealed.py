"""Sealed tokens: small records a server hands out and takes back, kept by nobody.

A token is ``prefix`` + base64url(zlib(JSON)) + ``.`` + base64url(HMAC-SHA256)[:16 bytes],
under a key derived from (never equal to) the checkpoint signing seed and a label naming what
the token is for. So every server process sharing the signing key opens every token, nobody
can forge or alter one, and a token made for one purpose never opens as another's. Export ids
(``service.exports``) are sealed; the base64url helpers also serve Pangea's download links.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from typing import Any

import orjson

from trailkeep.merkle import Signer

__all__ = ["Sealer", "b64", "unb64"]


def b64(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """The bytes of unpadded base64url (``binascii.Error`` if it is not)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealer:
    """Seals and opens one kind of token.

    Args:
        signer: the checkpoint signing key, whose seed the token key is derived from.
        label: what the tokens are for (the key derivation's message).
        prefix: what every token of the kind starts with.
    """

    def __init__(self, signer: Signer, label: bytes, prefix: str) -> None:
        seed = signer.private_key.private_bytes_raw()
        self.key = hmac.new(seed, label, hashlib.sha256).digest()
        self.prefix = prefix

    def _mac(self, payload: str) -> str:
        return b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest()[:16])

    def seal(self, data: dict[str, Any]) -> str:
        """A token holding ``data`` (JSON-serialisable, with ``"v": 1``)."""
        payload = b64(zlib.compress(orjson.dumps(data), 9))
        return f"{self.prefix}{payload}.{self._mac(payload)}"

    def open(self, token: str) -> dict[str, Any] | None:
        """What a token holds, or None if it is not one this sealer made."""
        if not token.startswith(self.prefix):
            return None
        payload, _, mac = token.removeprefix(self.prefix).partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            data = orjson.loads(zlib.decompress(unb64(payload)))
        except (ValueError, binascii.Error, zlib.error, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) and data.get("v") == 1 else None

"""Strict readers for the pieces of text the C2SP formats share: base64, decimals, characters.

Each format (note, checkpoint, tlog-proof) is parsed strictly so that a document has exactly one
spelling: base64 must be canonical (what the encoder writes), decimals have no sign, spaces or
leading zeros, and Python's lenient parsers (``int`` accepts ``+1``, ``1_000`` and Arabic-Indic
digits; ``b64decode`` accepts non-zero padding bits) never see untrusted text directly.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

__all__ = ["MAX_UINT64", "b64decode_canonical", "find_forbidden_character", "parse_uint64"]

MAX_UINT64: Final = 2**64 - 1

_DECIMAL: Final = re.compile(r"0|[1-9][0-9]{0,19}")
# C0 controls except newline, and lone surrogates, which a str can hold but UTF-8 cannot encode.
_FORBIDDEN: Final = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")


def b64decode_canonical(text: str) -> bytes | None:
    """The bytes ``text`` encodes in standard padded base64, or None unless it is canonical."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def parse_uint64(text: str) -> int | None:
    """The value of an ASCII decimal with no leading zeros below 2**64, or None."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_UINT64 else None


def find_forbidden_character(text: str) -> int | None:
    """The offset of the first control character other than newline, or None.

    C2SP notes must be valid UTF-8 without ASCII control characters except newline; a carriage
    return is one of them, so CRLF text is rejected rather than silently normalised.
    """
    match = _FORBIDDEN.search(text)
    return None if match is None else match.start()

"""Identifiers the server hands out: time-sortable event ids, key ids and secrets."""

from __future__ import annotations

import base64
import os
import secrets
import time

from trailkeep.model.entropy import random_bytes

__all__ = ["new_client_id", "new_event_id", "new_event_ids", "new_secret"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)


_ID_RANDOM = 10  # bytes: ULID's 80 random bits


def new_event_id(now_ns: int | None = None) -> str:
    """A ULID behind ``evt_``: 48 bits of milliseconds then 80 random bits.

    The time prefix keeps ids roughly in arrival order, so the id index grows at its end.
    Encoded with the C base32 codec and translated to Crockford's alphabet: this runs once
    per ingested event.
    """
    millis = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000
    return _ulid(millis, random_bytes(_ID_RANDOM))


def new_event_ids(count: int, now_ns: int | None = None) -> list[str]:
    """``count`` event ids of one millisecond, from one ``random_bytes`` draw.

    What a batch needs: CPython releases the GIL around every ``getrandom()``, which wakes a
    thread waiting for it (the storage writer) for nothing, once per call.
    """
    millis = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000
    pool = random_bytes(_ID_RANDOM * count)
    return [_ulid(millis, pool[i : i + _ID_RANDOM]) for i in range(0, len(pool), _ID_RANDOM)]


def _ulid(millis: int, random: bytes) -> str:
    # 2 zero bits + 48 time bits + 80 random bits = 130 bits = 26 base32 characters; shifted
    # into the top of 17 bytes (136 bits) so base32's 5-bit groups fall on ULID's.
    value = millis << 80 | int.from_bytes(random, "big")
    encoded = base64.b32encode((value << 6).to_bytes(17, "big")).decode()[:26]
    return "evt_" + encoded.translate(_TO_CROCKFORD)


def new_client_id() -> str:
    """A public key identifier (``tkc_`` + 16 base32 characters), safe to log."""
    return "tkc_" + _b32(int.from_bytes(os.urandom(10), "big"), 16).lower()


def new_secret() -> str:
    """A 256-bit secret, URL-safe; shown once and stored only as a hash."""
    return "tks_" + secrets.token_urlsafe(32)

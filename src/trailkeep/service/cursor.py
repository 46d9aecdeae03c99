"""Opaque page cursors: a keyset position plus the snapshot and query they belong to."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from trailkeep.errors import InvalidCursorError
from trailkeep.query.filters import Sort

__all__ = ["Cursor", "query_fingerprint"]


def query_fingerprint(
    filters: Mapping[str, Sequence[str]],
    start: str | None,
    end: str | None,
    sort: Sort,
    extra: str = "",
) -> str:
    """A short digest of everything that shapes a walk, so a cursor cannot cross queries."""
    canon = orjson.dumps(
        [sorted((k, list(v)) for k, v in filters.items()), start, end, sort.value, extra]
    )
    return hashlib.sha256(canon).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: after ``(ts, id)``, never past ``max_seq``."""

    ts: str
    id: str
    max_seq: int
    fingerprint: str

    def encode(self) -> str:
        raw = orjson.dumps(
            {"v": 1, "t": self.ts, "i": self.id, "h": self.max_seq, "f": self.fingerprint}
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str, fingerprint: str) -> Cursor:
        """Parse a cursor and check it belongs to the query it is used with."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = orjson.loads(raw)
            cursor = cls(data["t"], data["i"], data["h"], data["f"])
            valid = data.get("v") == 1 and all(
                isinstance(v, t)
                for v, t in (
                    (cursor.ts, str),
                    (cursor.id, str),
                    (cursor.max_seq, int),
                    (cursor.fingerprint, str),
                )
            )
        except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
            valid = False
        if not valid:
            raise InvalidCursorError("cursor is not one this server issued; start from page one")
        if cursor.fingerprint != fingerprint:
            raise InvalidCursorError(
                "cursor belongs to another query: keep filters, start, end and sort unchanged"
                " while paging"
            )
        return cursor

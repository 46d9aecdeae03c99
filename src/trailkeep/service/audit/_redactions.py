"""Every erasure against the ``event.redact`` record that must accompany it.

An erasure keeps the leaf valid by design (the field's commitment is kept), so a "redaction"
done directly in the database — the value replaced by the marker, its salt zeroed, its
commitment moved to ``redactions`` — verifies like a real one. What tells them apart is the
audit event the service appends in the same transaction (``service.redaction``): action
``event.redact``, target the erased event, ``metadata.fields`` the erased paths. Each erased
field must be named by such a record, later in the same log, whose own content is intact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from ._report import Problem

__all__ = ["RedactionLedger"]


class RedactionLedger:
    """Erased fields and erasure records seen while scanning; ``problems`` pairs them up."""

    __slots__ = ("_erased", "_records")

    def __init__(self) -> None:
        #: event id -> (seq, erased paths)
        self._erased: dict[str, tuple[int, list[str]]] = {}
        #: event id -> [(seq of the record, paths it names)]
        self._records: dict[str, list[tuple[int, frozenset[str]]]] = {}

    def erased(self, seq: int, event_id: str, redactions: bytes, content: dict[str, Any]) -> None:
        """Note an intact event's erased paths (``redactions``: path -> commitment, as stored)."""
        try:
            paths = sorted(orjson.loads(redactions))
        except (orjson.JSONDecodeError, TypeError):
            return  # the exact path already reported a malformed column
        if paths:
            self._erased[event_id] = (seq, paths)

    def record(self, seq: int, content: dict[str, Any]) -> None:
        """Note an intact ``event.redact`` event: which event it erased, and which paths."""
        target, metadata = content.get("target"), content.get("metadata")
        if type(target) is not dict or type(metadata) is not dict:
            return
        event_id, fields = target.get("id"), metadata.get("fields")
        if type(event_id) is str and type(fields) is list:
            named = frozenset(f for f in fields if type(f) is str)
            self._records.setdefault(event_id, []).append((seq, named))

    def problems(self, deleted_after: int | None = None) -> Iterator[Problem]:
        """One problem per erased event with a field no later erasure record names.

        Args:
            deleted_after: the last position of a row found missing (already reported); an
                erasure before it is not judged, since its record may be that row.
        """
        for event_id, (seq, paths) in self._erased.items():
            if deleted_after is not None and seq < deleted_after:
                continue
            named: set[str] = set()
            for record_seq, fields in self._records.get(event_id, ()):
                if record_seq > seq:
                    named |= fields
            unnamed = [p for p in paths if p not in named]
            if unnamed:
                them = "it" if len(unnamed) == 1 else "them"
                yield Problem(
                    "redaction",
                    f"{', '.join(unnamed)} erased, but no later event.redact record of this log"
                    f" names {them}: an erasure done in the database, not through the API",
                    seq,
                    event_id,
                )

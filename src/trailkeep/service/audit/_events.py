"""Each stored row against its committed content: the leaf, and everything derived from it.

A row's content (body and salts) is what the leaf commits to; the query columns, the full-text
text and the erasure markers are derived copies that answer queries. An event whose content
does not recompute to its stored leaf is reported as ``altered`` (or ``field``, naming the field
at fault) and nothing else: its derived copies cannot be judged against content that is itself
wrong. An event whose content is intact gets at most one more finding, listing every derived
copy that differs (query columns, full-text row), so one altered row is one problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from trailkeep.errors import IntegrityError
from trailkeep.model.event import StoredEvent
from trailkeep.model.evidence import event_leaf_hash
from trailkeep.query.fulltext import search_document
from trailkeep.storage.base import AuditChunk
from trailkeep.storage.rows import QUERY_COLUMNS, filter_values, unpack_salts

from ._leaves import RowPlans
from ._redactions import RedactionLedger
from ._report import Problem
from ._rollups import RollupTally

__all__ = ["ChunkResult", "EventChecker"]

_FIXED: Final = 9  # AUDIT_FIELDS before the query columns


@dataclass(slots=True)
class ChunkResult:
    """What the tree needs from a chunk: the stored leaf hash of each position (None where
    there is no row, or no well-formed hash), and positions whose stored leaf cannot be
    trusted (its row does not match it)."""

    leaves: list[bytes | None]
    tainted: list[int] = field(default_factory=list)


class EventChecker:
    """Checks rows of one tenant chunk by chunk; findings go to ``problems``.

    Args:
        tenant_id: the tenant audited.
        text_form: how the backend stores a text value (``Store.audit_text``).
        problems: where findings are appended.
        watch: positions whose ``received_at`` the checkpoint checks need.
    """

    def __init__(
        self,
        tenant_id: str,
        text_form: Callable[[str], str],
        problems: list[Problem],
        watch: frozenset[int] = frozenset(),
    ) -> None:
        self._tenant = tenant_id
        self._text_form = text_form
        self._problems = problems
        self._plans = RowPlans(tenant_id)
        self._watch = watch
        self.received_at: dict[int, str] = {}
        self.rollups = RollupTally()
        self.redactions = RedactionLedger()

    def check(self, chunk: AuditChunk, start: int, end: int) -> ChunkResult:
        """Check a chunk of ``Store.audit_scan`` for positions ``[start, end)``: the rows the
        C part vouched for are done (their leaves, columns and watched times are taken as
        they come); the rest are checked here.

        The loop runs for each row the C part did not vouch for (all of them without it), so
        its common case (a row of a known shape whose leaf, columns and full text all match)
        is written inline; everything else goes to the methods below.
        """
        result = ChunkResult(chunk.leaves)
        leaves, tainted = result.leaves, result.tainted
        counted: list[Sequence[str | None]] = list(chunk.counted)
        self.received_at.update(chunk.watched)
        plans, loads, watch = self._plans.plan, orjson.loads, self._watch
        for row in chunk.rest:
            seq, event_id, received_at, _, salts, leaf = row[:6]
            if seq in watch:
                self.received_at[seq] = received_at
            if type(leaf) is bytes and len(leaf) == 32:
                leaves[seq - start] = leaf
            else:
                leaf = None
            try:
                content = loads(row[3])
            except orjson.JSONDecodeError as exc:
                self._event(seq, event_id, "altered", f"the stored body is not JSON ({exc})")
                tainted.append(seq)
                counted.append(row[_FIXED:])
                continue
            plan = plans(content) if type(content) is dict else None
            if plan is not None and leaf is not None and type(salts) is bytes:
                try:
                    found, columns, text = plan.read(
                        content, salts, seq, event_id, received_at, leaf
                    )
                except (LookupError, TypeError):  # not of the shape after all: exact path
                    found = None
                if found is not None:
                    message = content.get("message")
                    if (
                        columns != row[_FIXED:]
                        or row[7] != (message if type(message) is str else "")
                        or row[8] != plan.fields(text)
                    ):
                        self._derived(row, content)
                    counted.append(columns)
                    if row[6] or columns[1] == "event.redact":
                        self._erasures(row, content)
                    continue
            if not self._exact(row, content, leaf):
                tainted.append(seq)
                counted.append(row[_FIXED:])  # as stored: the content cannot say otherwise
                continue
            counted.append(self._derived(row, content))
            self._erasures(row, content)
        tainted.sort()
        self.rollups.add(counted)
        return result

    def _erasures(self, row: tuple[Any, ...], content: dict[str, Any]) -> None:
        if row[6]:
            self.redactions.erased(row[0], row[1], row[6], content)
        if content.get("action") == "event.redact":
            self.redactions.record(row[0], content)

    def _exact(self, row: tuple[Any, ...], content: Any, leaf: bytes | None) -> bool:
        """The exact path: True if the row matches its leaf, else one finding naming why."""
        seq, event_id, received_at, _, salts, _, redactions = row[:7]
        if type(content) is not dict:
            self._event(seq, event_id, "altered", "the stored body is not a JSON object")
            return False
        try:
            redacted = (
                {p: bytes.fromhex(c) for p, c in orjson.loads(redactions).items()}
                if redactions
                else {}
            )
            event = StoredEvent(self._tenant, seq, event_id, received_at, content, leaf)
            recomputed = event_leaf_hash(event.to_wire(), unpack_salts(content, salts), redacted)
        except IntegrityError as exc:
            self._event(seq, event_id, "field", exc.message)
            return False
        except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            self._event(seq, event_id, "field", f"stored salts or erasures are malformed: {exc}")
            return False
        if leaf is None:
            self._event(seq, event_id, "altered", "the row has no (or a malformed) leaf hash")
            return False
        if recomputed != leaf:
            self._event(seq, event_id, "altered", "content or stored hash does not match its leaf")
            return False
        return True

    def _derived(self, row: tuple[Any, ...], content: dict[str, Any]) -> tuple[str | None, ...]:
        """Compare the row's derived copies with the content; return the query columns as the
        content defines them (what the rollups must count)."""
        expected = filter_values(content)
        stored = row[_FIXED:]
        differs: list[str] = []
        if stored != expected:
            differs.extend(self._columns(stored, expected))
        text = search_document(content)
        message, fields = row[7], row[8]
        if message != text.message or fields != text.fields:
            form = self._text_form
            if message is None or fields is None:
                differs.append("its full-text row is missing (search cannot find it)")
            elif message != form(text.message):
                differs.append("its full-text message differs from the content")
            elif fields != form(text.fields):
                differs.append("its full-text fields differ from the content")
        if differs:
            kind = "derived" if not differs[0].startswith("its full-text") else "fulltext"
            self._event(row[0], row[1], kind, "; ".join(differs))
        return expected

    def _columns(self, stored: Sequence[Any], expected: Sequence[Any]) -> list[str]:
        out = []
        form = self._text_form
        for name, have, want in zip(QUERY_COLUMNS, stored, expected, strict=True):
            if have != want and not (type(want) is str and have == form(want)):
                out.append(f"column {name} is {have!r}, the committed content says {want!r}")
        return out

    def _event(self, seq: int, event_id: str, kind: str, message: str) -> None:
        self._problems.append(Problem(kind, message, seq, event_id))

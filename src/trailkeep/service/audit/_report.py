"""What an audit found: one ``Problem`` per real problem, gathered per tenant."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AuditReport", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: what kind, where (seq and event id, when known), and what differs.

    Attributes:
        kind: a short stable name (``altered``, ``derived``, ``fulltext``, ``redaction``,
            ``missing``, ``past-head``, ``tree-node``, ``tree-head``, ``checkpoint``,
            ``checkpoint-gap``, ``truncated``, ``rollup``, ``fulltext-index``, ``field``,
            ``pruned``: a tombstone whose content is still stored, ``pangea-leaf``,
            ``pangea-head``: Pangea's tree against the events and the head).
        message: what differs, in words an operator can act on.
        seq: the first position concerned, when there is one.
        event_id: the event at ``seq``, when there is one.
    """

    kind: str
    message: str
    seq: int | None = None
    event_id: str | None = None

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "log"
        if self.event_id:
            where += f", event {self.event_id}"
        return f"[{self.kind}] {where}: {self.message}"


@dataclass(slots=True)
class AuditReport:
    """A tenant's audit: how much was checked and every problem, in the order found."""

    tenant_id: str
    events: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

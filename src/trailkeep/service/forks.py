"""Whether a database's tree extends a checkpoint signed earlier, and refusing writes to a
tenant whose tree does not.

A restored (older) database would otherwise take new events at ``seq``s that were already
signed for other events, and the signer would sign a second tree of a size it had signed: a
fork. So a tenant whose database tree does not extend the signer's remembered checkpoint
(``service.signer_state``) is *fenced*: every append to it is refused with 409 ``LOG_FORKED``
(before anything is acknowledged), its checkpoints are not signed, reads go on. A database
that does not extend what was signed is never accepted on its own: only an operator does so
(``trailkeep signer accept-database``). The fence goes without one only when the database
extends the checkpoint again (a later backup restored), found at the next start.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from trailkeep.errors import ConflictError, TrailkeepError
from trailkeep.merkle import (
    RFC9162,
    Verifier,
    consistency,
    open_checkpoint,
    root_from_subtrees,
    subtree_ids,
    verify_consistency,
)
from trailkeep.service.signer_state import Remembered
from trailkeep.storage.base import Store
from trailkeep.storage.tree import TreeHead

__all__ = [
    "Fork",
    "ForkGuard",
    "LogForkedError",
    "database_root_at",
    "find_fork",
    "held_checkpoint",
]

log = logging.getLogger(__name__)

#: The documented way out, named in every refusal.
WAY_OUT = (
    "if restoring this database was intended, an operator accepts it with `trailkeep signer"
    " accept-database --tenant {tenant}` (docs/operations.md, restoring a backup)"
)


class LogForkedError(ConflictError):
    """The tenant's tree in the database does not extend a checkpoint already signed."""

    code = "LOG_FORKED"


def _b64(value: bytes | None) -> str:
    return "(unreadable)" if value is None else base64.b64encode(value).decode()


@dataclass(frozen=True, slots=True)
class Fork:
    """A database tree that does not extend a signed checkpoint, with what tells them apart.

    Attributes:
        signed: the checkpoint signed earlier (kept outside the database).
        head_size, head_root: the database's tree head now.
        root_at_signed_size: the database's root at ``signed.size``, when it has that many
            leaves and their nodes (None otherwise).
    """

    tenant_id: str
    signed: Remembered
    head_size: int
    head_root: bytes
    root_at_signed_size: bytes | None

    def describe(self) -> str:
        """Both sizes and both roots, in one sentence."""
        signed = self.signed
        when = f" signed at {signed.signed_at}" if signed.signed_at else ""
        text = (
            f"the database's log of tenant {self.tenant_id!r} (size {self.head_size}, root"
            f" {_b64(self.head_root)}) does not extend the checkpoint{when} (size"
            f" {signed.size}, root {_b64(signed.root_hash)})"
        )
        if self.head_size < signed.size:
            return text + f": the database lacks {signed.size - self.head_size} signed events"
        return text + f": its root at size {signed.size} is {_b64(self.root_at_signed_size)}"

    def message(self) -> str:
        """The refusal an appending client gets: what is wrong, and the way out."""
        return (
            f"writes refused: {self.describe()}; a restored or truncated database would fork"
            f" the signed log; {WAY_OUT.format(tenant=self.tenant_id)}"
        )


def database_root_at(store: Store, tenant_id: str, size: int) -> bytes | None:
    """The root of the tenant's first ``size`` leaves from stored nodes; None if missing."""
    ids = subtree_ids(size)
    try:
        hashes = dict(zip(ids, store.read_nodes(tenant_id, ids), strict=True))
        return root_from_subtrees(RFC9162, size, hashes.__getitem__)
    except TrailkeepError:
        return None


def find_fork(store: Store, signed: Remembered, head: TreeHead | None = None) -> Fork | None:
    """None if the tenant's database tree extends ``signed`` (a consistency proof from it to
    the head, read from stored nodes, verifies; equal sizes need equal roots), else the fork.

    Args:
        head: the tenant's head if already read; an unknown tenant has an empty head.
    """
    tenant_id = signed.tenant_id
    if head is None:
        try:
            head = store.tree_head(tenant_id)
        except TrailkeepError:
            head = TreeHead(0, ())
    root = head.root()
    if head.size >= signed.size:
        nodes = consistency(signed.size, head.size)
        try:
            hashes = nodes.rehash(store.read_nodes(tenant_id, nodes.ids), RFC9162)
            verify_consistency(RFC9162, signed.size, head.size, hashes, signed.root_hash, root)
            return None
        except TrailkeepError:
            pass
        at = database_root_at(store, tenant_id, signed.size)
    else:
        at = None
    return Fork(tenant_id, signed, head.size, root, at)


def held_checkpoint(note: str, verifier: Verifier) -> Remembered:
    """A checkpoint kept outside the database (by a monitor, an auditor, the signer's state),
    checked against the log's key, as the ``Remembered`` that ``find_fork`` compares.

    Its tenant is the last ``/``-separated part of its origin (tenant names hold no ``/``).

    Raises:
        IntegrityError: the note is malformed or not signed by ``verifier``'s key.
    """
    checkpoint = open_checkpoint(note, verifier)
    tenant_id = checkpoint.origin.rsplit("/", 1)[-1]
    return Remembered(tenant_id, checkpoint.origin, checkpoint.size, checkpoint.root_hash, note, "")


class ForkGuard:
    """The tenants this process refuses to append to, and the check storage runs per append.

    ``check_append`` is installed as ``Store.append_guard``: the writer calls it with the
    tenant's head, read inside the write transaction, before it sequences new events. It is a
    dict lookup and an integer comparison, so ingest does not slow down. A head smaller than
    the remembered size (a restore, a deleted tail) is caught there even if it happened while
    this process ran; a head as large but with another root is caught when the service starts
    and whenever it signs (``find_fork``), before any checkpoint of it is signed.
    """

    def __init__(self) -> None:
        self._signed: dict[str, Remembered] = {}
        self._forks: dict[str, Fork] = {}
        self._accepting: set[str] = set()

    @contextmanager
    def accepting(self, tenant_id: str) -> Iterator[None]:
        """Let appends to a fenced tenant through while an operator's acceptance records
        itself in the tenant's log."""
        self._accepting.add(tenant_id)
        try:
            yield
        finally:
            self._accepting.discard(tenant_id)

    def remember(self, signed: Remembered) -> None:
        """Appends to this tenant must now find a head of at least ``signed.size``."""
        self._signed[signed.tenant_id] = signed

    def fence(self, fork: Fork) -> None:
        """Refuse writes to the fork's tenant; logged loudly, once per fork found."""
        if self._forks.get(fork.tenant_id) != fork:
            log.critical("LOG FORK: %s; %s", fork.describe(), WAY_OUT.format(tenant=fork.tenant_id))
        self._forks[fork.tenant_id] = fork

    def lift(self, tenant_id: str) -> None:
        """Writes to this tenant are allowed again (an operator accepted its database)."""
        if self._forks.pop(tenant_id, None) is not None:
            log.warning("writes to tenant %r allowed again: an operator accepted its database",
                        tenant_id)  # fmt: skip

    def fork(self, tenant_id: str) -> Fork | None:
        return self._forks.get(tenant_id)

    def fenced(self) -> list[str]:
        return sorted(self._forks)

    def check_append(self, tenant_id: str, head: TreeHead) -> None:
        """Raise ``LogForkedError`` unless new events may be appended after ``head``."""
        if tenant_id in self._accepting:
            return
        fork = self._forks.get(tenant_id)
        if fork is None:
            signed = self._signed.get(tenant_id)
            if signed is None or head.size >= signed.size:
                return
            fork = Fork(tenant_id, signed, head.size, head.root(), None)
            self.fence(fork)
        raise LogForkedError(fork.message())

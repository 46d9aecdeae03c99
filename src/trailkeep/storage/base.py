"""The storage interface every backend implements, and the values it returns."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from trailkeep.model.event import NewEvent, StoredEvent
from trailkeep.model.tenant import ApiKey, Tenant
from trailkeep.query.filters import EventQuery

__all__ = ["Appended", "Page", "Store"]


@dataclass(frozen=True, slots=True)
class Appended:
    """One event of an append: where it landed, and whether an earlier write already had it."""

    event: StoredEvent
    replayed: bool


@dataclass(frozen=True, slots=True)
class Page:
    """A page of events, and the tenant's log size when it was read (for stable paging)."""

    events: list[StoredEvent]
    log_size: int


class Store(abc.ABC):
    """Everything the service needs from a database.

    Reads are blocking calls, safe from any thread. Writes of events go through ``append``,
    which returns a future resolved only once the events are durable; backends batch
    concurrent appends into one transaction (group commit).
    Driver exceptions never leave a backend: they become ``trailkeep.errors`` types.
    """

    # -- lifecycle -------------------------------------------------------------------------

    @abc.abstractmethod
    def migrate(self) -> list[str]:
        """Apply pending schema migrations in order; return the names applied."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish queued writes, then release connections and threads."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``UnavailableError`` unless the database answers a trivial query."""

    # -- tenants and keys ------------------------------------------------------------------

    @abc.abstractmethod
    def create_tenant(self, tenant: Tenant) -> None:
        """Raise ``ConflictError`` if the id is taken."""

    @abc.abstractmethod
    def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    @abc.abstractmethod
    def list_tenants(self) -> list[Tenant]: ...

    @abc.abstractmethod
    def update_tenant_settings(self, tenant_id: str, settings: dict[str, Any]) -> Tenant: ...

    @abc.abstractmethod
    def create_key(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    def get_key(self, client_id: str) -> ApiKey | None: ...

    @abc.abstractmethod
    def list_keys(self, tenant_id: str | None) -> list[ApiKey]: ...

    @abc.abstractmethod
    def revoke_key(self, client_id: str, revoked_at: str) -> None: ...

    # -- events ----------------------------------------------------------------------------

    @abc.abstractmethod
    def append(self, tenant_id: str, events: Sequence[NewEvent]) -> Future[list[Appended]]:
        """Sequence events into the tenant's log, all or nothing.

        An event whose idempotency key the tenant has already used is not written again;
        its ``Appended`` carries the first write's event with ``replayed=True``.
        """

    @abc.abstractmethod
    def get_event(self, tenant_id: str, event_id: str) -> StoredEvent | None: ...

    @abc.abstractmethod
    def list_events(self, tenant_id: str, query: EventQuery) -> Page: ...

    @abc.abstractmethod
    def log_size(self, tenant_id: str) -> int: ...

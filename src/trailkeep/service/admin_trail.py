"""The admin trail: every administrative act as one audit event, in the log it concerns.

Tenant creation, key issue and revocation, setting, retention and hold changes, exports,
redactions and prunes are recorded by the server itself, in category ``system`` with an
action from :data:`ADMIN_NAMESPACES` — a shape clients may not write (:func:`is_reserved`),
so an event of that shape is always the server's. An act that concerns a tenant goes to that
tenant's log; an operator act that concerns no tenant (creating a tenant, issuing or revoking
an operator key) goes to the reserved operator log :data:`OPERATOR_LOG`, which ``verify
database`` checks like any other.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from trailkeep.errors import ConflictError
from trailkeep.model.event import StoredEvent
from trailkeep.model.tenant import OPERATOR_LOG, Principal, Tenant
from trailkeep.model.timeparse import format_time, utcnow
from trailkeep.service.events import ADMIN_NAMESPACES, Limits, is_reserved, prepare_event
from trailkeep.storage.base import Store

__all__ = [
    "ADMIN_NAMESPACES",
    "OPERATOR_LOG",
    "Actor",
    "is_reserved",
    "record_admin_event",
]

#: The category of every event the server writes about itself.
SYSTEM: Final = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performed an administrative act, as its audit event names them.

    Attributes:
        id: the key's client id, or the operating-system login of a command-line operator.
        type: ``api_key`` (over the API) or ``cli`` (a command working on the database).
        role: the key's role, for ``api_key``.
    """

    id: str
    type: str
    role: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.client_id, "api_key", principal.role.value)

    @classmethod
    def cli(cls) -> Actor:
        """The person running a ``trailkeep`` command that opens the database itself."""
        try:
            login = getpass.getuser()
        except (KeyError, OSError):  # no login name in a bare container
            login = "unknown"
        return cls(login, "cli")

    def to_json(self) -> dict[str, str]:
        out = {"id": self.id, "type": self.type}
        if self.role:
            out["role"] = self.role
        return out


def _operator_log(store: Store) -> None:
    """Create the operator log on first use (two processes racing both succeed)."""
    if store.get_tenant(OPERATOR_LOG) is None:
        with contextlib.suppress(ConflictError):
            store.create_tenant(Tenant(OPERATOR_LOG, format_time(utcnow()), {}))


def admin_event(
    action: str,
    actor: Actor,
    target: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    message: str = "",
    old: Any = None,
    new: Any = None,
) -> dict[str, Any]:
    """The content of an admin act's audit event (before commitments)."""
    content: dict[str, Any] = {
        "action": action,
        "category": SYSTEM,
        "outcome": "success",
        "actor": actor.to_json(),
        "target": dict(target),
        "metadata": dict(metadata),
    }
    if message:
        content["message"] = message
    if old is not None:
        content["old"] = old
    if new is not None:
        content["new"] = new
    return content


def record_admin_event(
    store: Store,
    tenant_id: str | None,
    action: str,
    actor: Actor | Principal | str,
    target: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    message: str = "",
    old: Any = None,
    new: Any = None,
) -> StoredEvent:
    """Append one admin act's audit event and wait until it is durable.

    Args:
        store: where the log is.
        tenant_id: the tenant the act concerns; None for the operator log.
        action: one of the reserved admin actions (``tenant.create``, ``key.create``...).
        actor: who acted: a principal (over the API), an :class:`Actor`, or a plain id.
        target: what was acted on (``id``, ``type``, ``name``).
        metadata: what changed; never a secret.
        message: one human sentence; a default is written from the action and target.
        old: the state before a change, new: after (as in any event).
    """
    if isinstance(actor, Principal):
        actor = Actor.of(actor)
    elif isinstance(actor, str):
        actor = Actor(actor, "operator")
    log = OPERATOR_LOG if tenant_id is None else tenant_id
    if tenant_id is None:
        _operator_log(store)
    text = message or f"{action} {target.get('type', '')} {target.get('id', '')}".strip()
    content = admin_event(action, actor, target, metadata, message=text, old=old, new=new)
    prepared = prepare_event(content, Limits())
    appended = store.append(log, [prepared]).result()
    return appended[0].event

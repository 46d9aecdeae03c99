"""Audit events the server writes about its own administrative acts (category ``system``).

A stand-in for the issue-16 admin trail helper (``record_admin_event``), kept to its shape so
the helper that replaces it at merge serves the same callers: retention records each prune
run here. Events go through the ordinary append path, so they are sequenced, committed to and
proven like any client's event.
"""

from __future__ import annotations

from typing import Any

from trailkeep.service.events import Limits, prepare_event
from trailkeep.storage.base import Appended, Store

__all__ = ["record_admin_event"]

_LIMITS = Limits()


def record_admin_event(
    store: Store,
    tenant_id: str | None,
    action: str,
    actor: str,
    target: dict[str, Any] | None,
    metadata: dict[str, Any],
    *,
    message: str = "",
) -> Appended:
    """Append one ``system`` event recording ``action`` to the tenant's log; blocks until it
    is durable (call it from a worker thread, never the event loop).

    Args:
        store: where the tenant's log lives.
        tenant_id: the tenant whose log records the act. None (an operator act with no
            tenant) is not supported by this stand-in.
        action: e.g. ``retention.prune``.
        actor: who acted: a client id, or ``"system"`` for the server's own tasks.
        target: what was acted on (``id``, ``type``), if anything.
        metadata: the act's details (for a prune: count, seq range, cutoff, policy).
        message: a human-readable line; by default the action.
    """
    if tenant_id is None:
        raise ValueError("operator acts with no tenant need the operator log (not built here)")
    content: dict[str, Any] = {
        "action": action,
        "category": "system",
        "outcome": "success",
        "actor": {"id": actor, "type": "system" if actor == "system" else "api_key"},
        "message": message or action,
        "metadata": metadata,
    }
    if target:
        content["target"] = target
    event = prepare_event(content, _LIMITS)
    return store.append(tenant_id, [event]).result()[0]

"""A tenant of more than 60,000 events, seeded fast through the store (not HTTP), with "needle"
events at both ends of time for every case issue 13 lists, then served by a real server.

Seeding goes through the server's own code in-process (``Services.build``: ``prepare`` draws
salts and commitments, ``append`` sequences and hashes), in batches of 2,000; then the real
``trailkeep serve`` opens the file, so the vendors' clients talk HTTP to it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.compat.support import Key
from tests.process import serving
from trailkeep.api.compat._common import native_content
from trailkeep.api.services import Services
from trailkeep.model.event import StoredEvent
from trailkeep.model.tenant import Role
from trailkeep.settings import Settings

__all__ = ["FILLER", "TENANT", "BigTenant", "big_tenant"]

TENANT = "big"
FILLER = 60_500
_BATCH = 2_000
_FIRST = datetime(2026, 1, 1, tzinfo=UTC)
_ACTIONS = ("login", "invoke", "execute", "document.read", "document.update")
_KINDS = ("document", "agent", "tool")

#: The oldest events: each carries the one value a vendor parameter must find.
OLDEST: list[dict[str, Any]] = [
    {
        "action": "execute",
        "category": "agents",
        "outcome": "failure",
        "actor": {"id": "user-old", "name": "name-old"},
        "target": {"type": "kind-old", "id": "target-old"},
        "source": {"service": "api-old"},
        "session_id": "session-old",
        "message": "needle-oldest-text in the haystack",
        "metadata": {
            "org_id": "org-old",
            "token_id": "tok-old",
            "category_name": "cat-old",
            "decision_id": "dec-old",
            "override_id": "ovr-old",
            "upstream_idp": "idp-old",
            "group_id": "group-old",
        },
    },
    {
        "action": "invoke",
        "actor": {"id": "123"},
        "metadata": {
            "policy_details": {"matched_policies": ["policy-matched-old"]},
            "policies_applied": ["policy-applied-old"],
            "extra": {"session_id": "extra-session-old"},
        },
    },
]
#: The newest events.
NEWEST: list[dict[str, Any]] = [
    {"action": "login", "actor": {"id": "user-new"}, "metadata": {"group_id": "group-new"}},
]


@dataclass(frozen=True)
class BigTenant:
    """The served database: its URL, the tenant's reader key, and every stored event."""

    url: str
    reader: Key
    events: list[StoredEvent]

    @property
    def oldest(self) -> list[StoredEvent]:
        return self.events[: len(OLDEST)]

    @property
    def newest(self) -> list[StoredEvent]:
        return self.events[-len(NEWEST) :]


def _filler(rng: random.Random, i: int) -> dict[str, Any]:
    ts = _FIRST + timedelta(seconds=30 * i + rng.random())
    event: dict[str, Any] = {
        "timestamp": ts.isoformat(),
        "action": rng.choice(_ACTIONS),
        "category": rng.choice(("agents", "users", "documents")),
        "outcome": rng.choice(("success", "success", "failure")),
        "actor": {"id": f"user-{rng.randrange(500)}", "email": f"u{rng.randrange(500)}@x.io"},
        "target": {"type": rng.choice(_KINDS), "id": f"obj-{rng.randrange(5000)}"},
        "message": f"filler event {i}",
        "metadata": {"group_id": f"group-{rng.randrange(50)}", "org_id": "org-main"},
    }
    if rng.random() < 0.3:
        event["session_id"] = f"sess-{rng.randrange(10_000)}"
    return event


def _contents() -> list[dict[str, Any]]:
    rng = random.Random(13)
    oldest = [
        {"timestamp": (_FIRST - timedelta(days=1, seconds=-i)).isoformat(), **e}
        for i, e in enumerate(OLDEST)
    ]
    newest = [
        {"timestamp": (_FIRST + timedelta(days=60, seconds=i)).isoformat(), **e}
        for i, e in enumerate(NEWEST)
    ]
    return oldest + [_filler(rng, i) for i in range(FILLER)] + newest


def _seed(settings: Settings) -> tuple[Key, list[StoredEvent]]:
    services = Services.build(settings)
    try:
        services.tenants.create_tenant(TENANT)
        issued = services.tenants.create_key(TENANT, Role.READER)
        contents = _contents()
        stored: list[StoredEvent] = []
        for at in range(0, len(contents), _BATCH):
            batch = [services.events.prepare(native_content(c)) for c in contents[at : at + _BATCH]]
            stored += [a.event for a in services.store.append(TENANT, batch).result()]
    finally:
        services.close()
    return Key(issued.key.client_id, issued.secret, issued.token), stored


@contextmanager
def big_tenant(workdir: Path) -> Iterator[BigTenant]:
    """Seed the tenant into a new SQLite file in ``workdir``, then serve it until the block
    ends."""
    settings = Settings(
        database=f"sqlite:///{workdir / 'trailkeep.db'}",
        signing_key=workdir / "signing.key",
        server_name="big.trailkeep",
        sqlite_synchronous="NORMAL",
    )
    reader, stored = _seed(settings)
    with serving(settings.database, workdir / "signing.key", workdir / "server.log") as (url, _):
        yield BigTenant(url, reader, stored)

"""The synthetic audit events the benchmarks send: deterministic, varied, pre-encoded once.

Each worker builds its pool of request bodies from a seed before the clock starts, so the
measured loop only writes bytes to a socket. The pool is small (a few thousand distinct
events, repeated), but its value distributions are shaped like a real audit log so that the
list filters have realistic selectivity at a million events:

* ``action``: 16 actions, skewed (the commonest ~22 %, the rarest ~0.5 %);
* ``actor.id``: 2,000 users; ``target.id``: 50,000 objects of 5 types;
* ``outcome``: 90 % success, 8 % failure, 2 % unknown; 6 categories;
* ``timestamp`` (client-supplied, millisecond RFC 3339, so ingest pays for time parsing as it
  does for real clients), by mode: ``now`` (default) stamps each request with the client's
  clock as it is sent, by replacing :data:`TS_SLOT` in the pre-encoded bytes — events arrive
  in near time order, as live audit events do; ``spread`` draws each event's time uniformly
  over the 7 days before ``now`` (a backfill: every index insert lands at a random place,
  the worst case for the time-ordered indexes); ``none`` leaves it to the server.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from trailkeep.service.events import ADMIN_NAMESPACES

__all__ = [
    "ACTIONS",
    "TIMESTAMP_MODES",
    "TS_SLOT",
    "batch_bodies",
    "filter_values",
    "make_events",
    "single_bodies",
    "stamp",
]

#: (action, relative weight)
ACTIONS: Final = (
    ("document.read", 22), ("document.update", 16), ("login", 12), ("agent.invoke", 10),
    ("workflow.run", 8), ("tool.call", 7), ("document.create", 5), ("document.delete", 4),
    ("logout", 4), ("key.rotate", 3), ("user.invite", 3), ("role.grant", 2),
    ("integration.connect", 1.5), ("export.create", 1), ("tenant.update", 1),
    ("policy.change", 0.5),
)  # fmt: skip
_CATEGORIES: Final = ("users", "agents", "workflows", "tools", "integrations", "system")
_TARGET_TYPES: Final = ("document", "project", "agent", "workflow", "key")
_WORDS: Final = (
    "user", "updated", "the", "quarterly", "report", "with", "new", "figures", "agent",
    "invoked", "tool", "for", "customer", "request", "workflow", "completed", "after", "retry",
)  # fmt: skip
_REGIONS: Final = ("eu-west-1", "us-east-1", "ap-south-1")
ACTORS: Final = 2_000
_SPAN: Final = timedelta(days=7)
TIMESTAMP_MODES: Final = ("now", "spread", "none")
#: Stands for the send time in pre-encoded bodies; as wide as the stamp that replaces it.
TS_SLOT: Final = b"~" * 24


def stamp() -> bytes:
    """The client's clock now, as 24 bytes of ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    t = time.time()
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
    return text.encode()


def _category(action: str, drawn: str) -> str:
    """``drawn``, unless it would make the event one of the server's own admin records
    (category ``system`` with a ``tenant.*``, ``key.*``... action), which clients may not write."""
    if drawn == "system" and action.split(".", 1)[0] in ADMIN_NAMESPACES:
        return "security"
    return drawn


def _event(rng: random.Random, now: datetime, timestamps: str) -> dict[str, Any]:
    action = rng.choices([a for a, _ in ACTIONS], [w for _, w in ACTIONS])[0]
    user = rng.randrange(ACTORS)
    roll = rng.random()
    outcome = "success" if roll < 0.90 else ("failure" if roll < 0.98 else "unknown")
    ts = now - _SPAN * rng.random()  # drawn in every mode, so the other fields never change
    event: dict[str, Any] = {
        "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
        "action": action,
        "category": _category(action, rng.choice(_CATEGORIES)),
        "outcome": outcome,
        "actor": {"id": f"user-{user}", "type": "user", "email": f"user{user}@example.com"},
        "target": {"type": rng.choice(_TARGET_TYPES), "id": f"obj-{rng.randrange(50_000)}"},
        "message": " ".join(rng.choices(_WORDS, k=rng.randrange(6, 14))),
        "metadata": {
            "duration_ms": rng.randrange(1, 5_000),
            "region": rng.choice(_REGIONS),
            "attempt": rng.randrange(1, 4),
        },
    }
    if rng.random() < 0.5:
        event["source"] = {"ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.7",
                           "user_agent": "trailkeep-bench/1.0"}  # fmt: skip
    if rng.random() < 0.3:
        event["session_id"] = f"sess-{rng.randrange(100_000)}"
    if timestamps == "now":
        event["timestamp"] = TS_SLOT.decode()
    elif timestamps == "none":
        del event["timestamp"]
    return event


def make_events(
    seed: int, count: int, now: datetime, timestamps: str = "now"
) -> list[dict[str, Any]]:
    """``count`` events drawn from ``seed``: the same seed and ``now`` give the same events."""
    rng = random.Random(seed)
    return [_event(rng, now, timestamps) for _ in range(count)]


def batch_bodies(
    seed: int, bodies: int, size: int, now: datetime, timestamps: str = "now"
) -> list[bytes]:
    """``bodies`` distinct ``POST /v1/events/batch`` bodies of ``size`` events each."""
    events = make_events(seed, bodies * size, now, timestamps)
    return [orjson.dumps({"events": events[i : i + size]}) for i in range(0, len(events), size)]


def single_bodies(seed: int, count: int, now: datetime, timestamps: str = "now") -> list[bytes]:
    """``count`` distinct ``POST /v1/events`` bodies."""
    return [orjson.dumps(e) for e in make_events(seed, count, now, timestamps)]


def filter_values(seed: int, count: int, now: datetime) -> list[tuple[str, str]]:
    """``(action, actor.id)`` pairs that occur in the pool drawn from ``seed``."""
    events = make_events(seed, max(count * 20, 1_000), now, "spread")
    rng = random.Random(seed + 1)
    picked = rng.sample(events, count)
    return [(e["action"], e["actor"]["id"]) for e in picked]


def utc_now() -> datetime:
    """The reference time every worker of one run shares, to the millisecond."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

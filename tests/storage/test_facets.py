"""Facet counts equal a brute-force count of the events, whichever path a backend takes
(SQLite answers plain time ranges from its rollups), also after an erasure."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from tests.storage.test_store import make_tenant, new_event
from trailkeep.query.facets import DIMENSIONS
from trailkeep.query.filters import EventQuery
from trailkeep.service.events import Limits
from trailkeep.service.redaction import RedactionService
from trailkeep.storage.base import Store

RANGES = [
    pytest.param(None, None, id="everything"),
    pytest.param("2026-11-02T00:00:00.000000Z", "2026-11-05T00:00:00.000000Z", id="whole-days"),
    pytest.param("2026-11-01T07:30:00.000000Z", "2026-11-04T13:15:00.000000Z", id="ragged-edges"),
    pytest.param("2026-11-03T10:00:00.000000Z", None, id="open-end"),
    pytest.param(None, "2026-11-02T05:00:00.000000Z", id="open-start"),
    pytest.param("2026-11-02T10:05:00.000000Z", "2026-11-02T11:20:00.000000Z", id="short"),
    pytest.param("2027-01-01T00:00:00.000000Z", None, id="empty"),
]


def _events(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for _ in range(n):
        day, hour, minute = rng.randint(1, 5), rng.randint(0, 23), rng.randint(0, 59)
        event: dict[str, Any] = {
            "action": rng.choice(["login", "logout", "doc.update", "doc.delete"]),
            "timestamp": f"2026-11-0{day}T{hour:02d}:{minute:02d}:00Z",
            "outcome": rng.choice(["success", "failure"]),
            "actor": {"id": f"u{rng.randint(1, 12)}", "email": "x@y.z"},
        }
        if rng.random() < 0.7:
            event["category"] = rng.choice(["users", "auth", "system"])
        if rng.random() < 0.8:
            event["target"] = {"type": rng.choice(["doc", "session"]), "id": "t"}
        out.append(event)
    return out


def _expected(stored: list[dict[str, Any]], start: str | None, end: str | None) -> dict[str, Any]:
    chosen = [
        e
        for e in stored
        if (start is None or e["timestamp"] >= start) and (end is None or e["timestamp"] < end)
    ]
    paths = {
        "action": ("action",),
        "category": ("category",),
        "outcome": ("outcome",),
        "target.type": ("target", "type"),
        "actor.id": ("actor", "id"),
    }
    dims = {}
    for name, path in paths.items():
        counter: Counter[str] = Counter()
        for event in chosen:
            value: Any = event
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str):
                counter[value] += 1
        dims[name] = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {"total": len(chosen), "dims": dims}


class TestFacets:
    """Every dimension's top values and the total match a brute-force count."""

    @pytest.mark.parametrize(("start", "end"), RANGES)
    def test_matches_brute_force(self, store: Store, start: str | None, end: str | None) -> None:
        make_tenant(store)
        make_tenant(store, "other")
        events = _events(400)
        stored = [
            a.event.to_wire()
            for a in store.append("acme", [new_event(**e) for e in events]).result()
        ]
        store.append("other", [new_event(**e) for e in events[:50]]).result()
        got = store.facets("acme", EventQuery(start=start, end=end), 5)
        want = _expected(stored, start, end)
        assert got.total == want["total"]
        assert got.dimensions == want["dims"]
        assert sum(n for _, n in got.histogram) == want["total"]
        assert set(got.dimensions) == set(DIMENSIONS)

    @pytest.mark.asyncio
    async def test_after_erasure(self, store: Store) -> None:
        make_tenant(store)
        stored = [
            a.event.to_wire()
            for a in store.append("acme", [new_event(**e) for e in _events(60)]).result()
        ]
        victim = stored[0]
        await RedactionService(store, Limits(), integrity=True).redact(
            "acme", victim["id"], ["actor.id"], "tkc_admin"
        )
        got = store.facets("acme", EventQuery(), 20)
        after = [e for e in stored if e["id"] != victim["id"]]
        want = _expected([*after, {**victim, "actor": {}}], None, None)
        # The erasure's own audit event is counted too.
        assert got.total == want["total"] + 1
        counts = dict(got.dimensions["actor.id"])
        assert counts == dict(Counter(e["actor"]["id"] for e in after) + Counter(["tkc_admin"]))

    def test_short_span_counts_minutes(self, store: Store) -> None:
        """All events in one hour: the histogram is by minute, the counts still exact."""
        make_tenant(store)
        events = [
            {**e, "timestamp": f"2026-11-02T10:{i % 60:02d}:00Z"}
            for i, e in enumerate(_events(120))
        ]
        stored = [
            a.event.to_wire()
            for a in store.append("acme", [new_event(**e) for e in events]).result()
        ]
        got = store.facets("acme", EventQuery(), 5)
        want = _expected(stored, None, None)
        assert (got.total, got.dimensions, got.bucket) == (want["total"], want["dims"], "minute")
        assert dict(got.histogram) == {f"2026-11-02T10:{m:02d}": 2 for m in range(60)}

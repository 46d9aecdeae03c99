"""List-query latency over HTTP, and the SQL behind it: timings in-process and query plans.

The HTTP numbers are what a user sees. The in-process numbers (the store's own
``list_events`` on the same file, no server) separate SQLite's share from the HTTP, auth and
JSON share, and the plans (``EXPLAIN QUERY PLAN`` of the exact statement the store ran,
captured with a trace callback, so they never drift from the code) say which index each
query walks.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Shape", "explain_shapes", "http_latencies", "shapes_for"]


@dataclass(frozen=True, slots=True)
class Shape:
    """One kind of list request; ``params`` rotate across requests (e.g. different actors)."""

    name: str
    params: list[dict[str, str]]
    targeted: bool = True
    cursor: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def shapes_for(pairs: list[tuple[str, str]]) -> list[Shape]:
    """The list requests measured at scale; ``pairs`` are (action, actor.id) seen in the data."""
    return [
        Shape("newest 50", [{"limit": "50"}]),
        Shape("newest 50, page 2 (cursor)", [{"limit": "50"}], cursor=True),
        Shape("action + actor.id", [{"limit": "50", "action": a, "actor.id": u} for a, u in pairs]),
        Shape("action + outcome=failure",
              [{"limit": "50", "action": a, "outcome": "failure"} for a, _ in pairs[:8]],
              targeted=False),
        Shape("category + outcome=failure",
              [{"limit": "50", "category": c, "outcome": "failure"}
               for c in ("users", "agents", "workflows", "tools")], targeted=False),
    ]  # fmt: skip


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def percentiles(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {"p50": _percentile(s, 50), "p95": _percentile(s, 95), "p99": _percentile(s, 99)}


def _with_cursor(client: httpx.Client, params: dict[str, str]) -> dict[str, str]:
    response = client.get("/v1/events", params=params)
    response.raise_for_status()
    cursor = response.json()["next_cursor"]
    return {**params, "cursor": cursor} if cursor else params


def http_latencies(
    url: str, token: str, shape: Shape, requests: int, seconds: float, warmup: int = 10
) -> tuple[list[float], int]:
    """Sequential requests (no queueing in the numbers): ``(latencies, errors)``."""
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:
        params = [_with_cursor(client, p) if shape.cursor else p for p in shape.params]
        for i in range(warmup):
            client.get("/v1/events", params=params[i % len(params)])
        deadline = time.monotonic() + seconds
        for i in range(requests):
            if time.monotonic() >= deadline:
                break
            t0 = time.perf_counter()
            response = client.get("/v1/events", params=params[i % len(params)])
            response.read()
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200:
                errors += 1
    return latencies, errors


def explain_shapes(db: Path, tenant: str, shapes: list[Shape], runs: int = 30) -> str:
    """In-process ``list_events`` timings and query plans for each shape, as text."""
    import sqlite3

    from trailkeep.query.filters import FILTER_COLUMNS, EventQuery, Sort, filter_node
    from trailkeep.storage.sqlite import SQLiteStore

    store = SQLiteStore(str(db), leaf_function=None)
    lines: list[str] = []
    try:
        conn = store._reader()
        for shape in shapes:
            filters = {k: [v] for k, v in shape.params[0].items() if k in FILTER_COLUMNS}
            after = None
            if shape.cursor:  # the position a page-2 cursor carries: after row 50 of page 1
                first = store.list_events(tenant, EventQuery(filter_node(filters), limit=51)).events
                after = (first[49].content["timestamp"], first[49].id)
            query = EventQuery(filter_node(filters), None, None, Sort.DESC, limit=51, after=after)
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            store.list_events(tenant, query)
            conn.set_trace_callback(None)
            sql = next(s for s in statements if s.lstrip().upper().startswith("SELECT TENANT_ID"))
            timings = []
            for _ in range(runs):
                t0 = time.perf_counter()
                store.list_events(tenant, query)
                timings.append(time.perf_counter() - t0)
            plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            median_ms = statistics.median(timings) * 1e3
            lines.append(f"  {shape.name}: store.list_events median {median_ms:.2f} ms"
                         " (in-process, no HTTP)")  # fmt: skip
            lines.append(f"    sql: {sql}")
            lines += [f"    plan: {row[3]}" for row in plan]
    except sqlite3.Error as exc:
        lines.append(f"  (explain failed: {exc})")
    finally:
        store.close()
    return "\n".join(lines)

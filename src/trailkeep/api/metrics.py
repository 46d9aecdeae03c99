"""Prometheus metrics and the ASGI middleware that records requests and latencies.

Besides the request counters: the process (CPU, memory, open files), the garbage collector,
requests in flight, the writers' queue depth and group sizes, and how far the signed
checkpoints lag behind the tenants' trees (read from the store at each scrape).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trailkeep.storage._groups import GROUP_SIZE_BUCKETS, group_stats

if TYPE_CHECKING:
    from trailkeep.storage.base import Store

__all__ = ["Metrics", "MetricsMiddleware"]

log = logging.getLogger(__name__)


class _WriterCollector(Collector):
    """The writers' group sizes and queue depth (process-wide, from ``storage._groups``)."""

    def collect(self) -> Iterator[Metric]:
        stats = group_stats()
        with stats.lock:
            counts, events, depth = list(stats.counts), stats.events, stats.queue_depth
        cumulative, buckets = 0, []
        for bound, count in zip([*map(str, GROUP_SIZE_BUCKETS), "+Inf"], counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "trailkeep_writer_group_events",
            "Events per group commit (one transaction).",
            buckets=buckets,
            sum_value=events,
        )
        yield GaugeMetricFamily(
            "trailkeep_writer_queue_depth", "Write jobs waiting after the last group was taken.",
            value=depth,
        )  # fmt: skip


class _CheckpointLagCollector(Collector):
    """Events not yet covered by a signed checkpoint, over all tenants (no tenant labels:
    ``/metrics`` is public and must not list tenants)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            candidates = self.store.checkpoint_candidates()
        except Exception as exc:  # a scrape must not fail because the database is busy
            log.warning("checkpoint lag not measured: %s", exc)
            return
        lags = [head.size - (cp.size if cp else 0) for _, head, cp in candidates]
        yield GaugeMetricFamily(
            "trailkeep_checkpoint_lag_events",
            "Events in tenant trees not yet covered by a signed checkpoint (all tenants).",
            value=sum(lags),
        )
        yield GaugeMetricFamily(
            "trailkeep_checkpoint_lagging_tenants",
            "Tenants whose tree grew past their latest signed checkpoint.",
            value=sum(1 for lag in lags if lag > 0),
        )


class Metrics:
    """One registry per app, so two apps in one process (tests) never share counters."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(GC_COLLECTOR)
        self.registry.register(_WriterCollector())
        if store is not None:
            self.registry.register(_CheckpointLagCollector(store))
        self.in_flight = Gauge(
            "trailkeep_http_requests_in_flight",
            "HTTP requests being answered now.",
            registry=self.registry,
        )
        self.requests = Counter(
            "trailkeep_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "trailkeep_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events_ingested = Counter(
            "trailkeep_events_ingested",
            "Events durably written (replays not counted).",
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts every HTTP request by route template (never raw path: ids would explode labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Label children by (method, route, status): .labels() is costly on every request.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        self.metrics.in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            template = _route_label(scope)
            key = (str(scope["method"]), str(template), status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    self.metrics.requests.labels(key[0], template, str(status)),
                    self.metrics.latency.labels(key[0], template),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


def _route_label(scope: Scope) -> str:
    """The route template; ``/openapi.json``, ``/docs`` and its assets by their own name;
    anything else unmatched as ``unmatched`` (raw paths would explode the labels)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if template:
        return str(template)
    path = str(scope.get("path", ""))
    if path.startswith("/static/docs/"):
        return "/static/docs/{asset}"
    if path in ("/docs", "/docs/oauth2-redirect", "/openapi.json"):
        return path
    return "unmatched"

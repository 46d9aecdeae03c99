"""Liveness, readiness and Prometheus metrics: public, no credential."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from trailkeep.errors import UnavailableError

from ..deps import ServicesDep
from .events import json_response

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return json_response({"status": "ok"})


@router.get("/readyz")
def readyz(services: ServicesDep) -> Response:
    """The process can serve: its database answers."""
    try:
        services.store.ping()
    except UnavailableError as exc:
        return json_response({"status": "unavailable", "reason": exc.message}, 503)
    return json_response({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus exposition of requests, latencies and events ingested."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )

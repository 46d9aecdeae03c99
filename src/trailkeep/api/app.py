"""The FastAPI application factory."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from trailkeep import __version__
from trailkeep.settings import Settings
from trailkeep.viewer import install_viewer

from .body import document_bodies
from .compat import agilicus, axonflow, kubiya, pangea, wasabi
from .docs_ui import install_docs_ui
from .errors import document_media_type_error, install_error_handlers
from .ingest_edge import IngestEdge
from .limits import BodyLimitMiddleware
from .metrics import Metrics, MetricsMiddleware
from .ratelimit import RateLimitMiddleware, principal_key
from .routes import events, exports, health, log, retention, stream, tenants
from .schemas import BatchIn, EventIn
from .services import Services
from .shutdown import on_stop_signal

__all__ = ["SWITCH_INTERVAL", "create_app"]

#: Seconds a thread holds the GIL while another waits for it (the default is 5 ms).
SWITCH_INTERVAL = 0.0005

DESCRIPTION = """\
trailkeep is a multi-tenant, tamper-evident audit log.

Authenticate with `Authorization: Bearer <token>` (or `UserKey <token>`, or Basic
`client_id:secret`). Errors are always `{"error": {"code", "message"}}`.
"""


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    owns_services: bool | None = None,
) -> FastAPI:
    """Build the app; it owns (and closes at shutdown) the services it builds.

    Args:
        settings: server settings; defaults read ``TRAILKEEP_*`` from the environment.
        services: prebuilt services (tests); the caller then closes them.
        owns_services: close ``services`` at shutdown even though the caller built them
            (``trailkeep serve`` builds them first, to migrate and print the key).
    """
    settings = settings or Settings()
    owned = services is None if owns_services is None else owns_services
    services = services or Services.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In every server process (``serve --workers N`` starts each worker afresh): the
        # writer, the checkpointer and the event loop share the GIL, and a short switch
        # interval keeps a thread that wakes from I/O (SQLite releases the GIL on every step)
        # from waiting up to the default 5 ms each time behind a busy request thread.
        sys.setswitchinterval(SWITCH_INTERVAL)
        services.start()
        # Uvicorn waits for open responses before this lifespan ends, and a live stream never
        # ends by itself: the stop signal itself must end them.
        with on_stop_signal(services.streams.shut_down):
            yield
        if owned:
            services.close()

    app = FastAPI(
        title="trailkeep",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs_ui from vendored assets, not a CDN
        redoc_url=None,
        # Metrics are Prometheus' (/metrics); FastAPI's own OpenTelemetry would otherwise look
        # up the global providers on every request, to find them unconfigured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    app.state.metrics = Metrics(services.store)
    install_error_handlers(app)
    document_bodies(app, EventIn, BatchIn)
    document_media_type_error(app)
    install_docs_ui(app)
    install_viewer(app)  # /ui/ and / (docs/ui.md)
    app.include_router(events.router)
    app.include_router(events.facets_router)
    app.include_router(log.router)
    app.include_router(stream.router)
    app.include_router(exports.router)
    app.include_router(tenants.router)
    app.include_router(retention.router)
    app.include_router(health.router)
    for dialect in (kubiya, axonflow, agilicus, wasabi, pangea):  # DESIGN §9
        app.include_router(dialect.router)
    app.add_middleware(
        IngestEdge, services=services, metrics=app.state.metrics
    )  # innermost: under the limits and metrics
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_batch_bytes)
    app.add_middleware(
        RateLimitMiddleware,
        rate=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        key=principal_key(services.auth),
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app

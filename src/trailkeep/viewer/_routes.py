"""The viewer's routes: ``/`` and ``/ui/...`` pages rendered from Jinja2 templates, and the
static assets (scripts, style, the vendored Ed25519 library) under ``/ui/static``.

Pages carry no data and need no credential: the key lives in the browser, which fetches the
events itself. What the server renders is the page's frame and the state kept in its URL (the
query, the time range and the filters), so a search can be bookmarked and reloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from trailkeep import __version__

__all__ = ["FILTERS", "RANGES", "install_viewer"]

_HERE: Final = Path(__file__).resolve().parent
STATIC_PREFIX: Final = "/ui/static"

#: The facet filters the list page keeps in its URL, as ``GET /v1/events`` names them.
FILTERS: Final = ("category", "action", "outcome", "target.type", "actor.id")
#: Time-range presets: (label, ``start`` in the relative forms of DESIGN §6).
RANGES: Final = (
    ("Last 15 minutes", "now-15min"),
    ("Last hour", "now-1h"),
    ("Last 24 hours", "now-1day"),
    ("Last 7 days", "now-7d"),
    ("Last 30 days", "now-30d"),
    ("All time", ""),
)
#: Pages forbid everything but the server's own origin, so no request can leave it.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

templates = Jinja2Templates(directory=_HERE / "templates")
router = APIRouter(include_in_schema=False)

EventId = Annotated[str, PathParam(max_length=200)]


def _page(request: Request, name: str, **context: object) -> Response:
    response = templates.TemplateResponse(
        request, name, {"static": STATIC_PREFIX, "version": __version__, **context}
    )
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/")
def root() -> RedirectResponse:
    """The server's root is the viewer."""
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
def ui_no_slash() -> RedirectResponse:
    """`/ui` without its slash: the pages resolve their relative links against `/ui/`."""
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/", response_class=HTMLResponse)
def events_page(request: Request) -> Response:
    """The event table: search, time range, facets, histogram, live mode, export."""
    params = request.query_params
    filters = [(name, value) for name in FILTERS for value in params.getlist(name)]
    return _page(
        request,
        "events.html",
        q=params.get("q", ""),
        start=params.get("start", ""),
        end=params.get("end", ""),
        filters=filters,
        ranges=RANGES,
    )


@router.get("/ui/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> Response:
    """The sign-in form: an API key, kept in the browser's session storage only."""
    return _page(request, "signin.html")


@router.get("/ui/events/{event_id}", response_class=HTMLResponse)
def event_page(request: Request, event_id: EventId) -> Response:
    """One event, every field, and its verification in the browser."""
    return _page(request, "event.html", event_id=event_id)


def install_viewer(app: FastAPI) -> None:
    """Serve the viewer's pages and assets on ``app`` (``/``, ``/ui/...``)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=_HERE / "static"), name="viewer-assets")
    app.include_router(router)

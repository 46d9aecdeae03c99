"""``/docs``: Swagger UI served from the package itself, never from a CDN.

FastAPI's default ``/docs`` page loads Swagger UI's script and style from a CDN, so on a host
with no Internet access it is blank. The assets of ``swagger-ui-dist`` are vendored under
``api/static/swagger-ui`` (see its README) and served at ``/static/docs``. ReDoc, which has no
vendored copy, is not offered.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS", "STATIC_PREFIX", "install_docs_ui"]

ASSETS = Path(__file__).resolve().parent / "static" / "swagger-ui"
STATIC_PREFIX = "/static/docs"


def install_docs_ui(app: FastAPI) -> None:
    """Serve ``/docs`` (and its OAuth2 redirect page) with the vendored assets.

    Call it on an app built with ``docs_url=None, redoc_url=None``.
    """
    app.mount(STATIC_PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            # Swagger UI would otherwise fetch a validity badge from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

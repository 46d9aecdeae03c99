"""A real ``trailkeep serve`` per module and one headless Chromium per session, for the viewer.

Chromium is Debian's (``/usr/bin/chromium``), driven by the ``playwright`` package; nothing is
ever downloaded. Locally the browser tests skip, saying why, when either is missing; with
``TRAILKEEP_REQUIRE_BROWSER=1`` (which ``.ci/run`` sets) a missing one fails them instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.process import Server, provision, serving

CHROMIUM = os.environ.get("TRAILKEEP_CHROMIUM", "/usr/bin/chromium")
#: Flags that keep Chromium from talking to anything but the page's server.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
FIXTURES = Path(__file__).parent / "fixtures"


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install playwright)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module.

    Not per session: Playwright's sync API keeps its event loop running while it is open,
    and the async tests of other modules (pytest-asyncio) cannot start a loop until it stops.
    """
    missing = _missing_browser()
    if missing:
        if os.environ.get("TRAILKEEP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TRAILKEEP_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(f"browser tests need Chromium and playwright: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on a fresh SQLite file, with keys for tenant ``acme``."""
    where = tmp_path_factory.mktemp("ui")
    database = f"sqlite:///{where / 'ui.db'}"
    tokens = provision(database, "acme")
    key = where / "signing.key"
    with serving(database, key, where / "server.log") as (url, process):
        yield Server(url, database, process, tokens, where / "server.log")


class Browsing:
    """A browser context on the server: requests to any other origin are blocked and listed."""

    def __init__(self, browser: Any, server: Server, **options: Any) -> None:
        self.server = server
        self.context = browser.new_context(**options)
        self.context.set_default_timeout(15_000)
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._guard)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _guard(self, route: Any) -> None:
        url = route.request.url
        if url.startswith((self.server.url + "/", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def url(self, path: str) -> str:
        return self.server.url + path

    def sign_in(self, role: str = "reader") -> None:
        page = self.page
        page.goto(self.url("/ui/signin"))
        page.fill("input[name=token]", self.server.tokens[role])
        page.click("button[type=submit]")
        page.wait_for_url(self.url("/ui/"))

    def verification(self, event_id: str, query: str = "") -> tuple[str, str]:
        """Open an event's page and wait for the verdict: (state, the text shown)."""
        self.page.goto(self.url(f"/ui/events/{event_id}{query}"))
        box = self.page.locator("[data-verification]:not([data-verification=pending])")
        box.wait_for()
        return str(box.get_attribute("data-verification")), box.inner_text()


@pytest.fixture
def browsing(browser: Any, server: Server) -> Iterator[Browsing]:
    """A fresh, signed-out browser context (its own storage) on the module's server."""
    session = Browsing(browser, server)
    yield session
    session.context.close()
    assert session.outside == [], "a page requested something outside the server's origin"
    assert session.errors == [], "a page raised a JavaScript error"


def post_events(server: Server, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write events through the API (a batch) and return them as stored."""
    response = httpx.post(
        f"{server.url}/v1/events/batch",
        json={"events": events},
        headers=server.auth("writer"),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    stored: list[dict[str, Any]] = response.json()["events"]
    return stored


def redact(server: Server, event_id: str, fields: list[str]) -> None:
    response = httpx.post(
        f"{server.url}/v1/events/{event_id}/redact",
        json={"fields": fields},
        headers=server.auth("admin"),
        timeout=30,
    )
    assert response.status_code == 200, response.text

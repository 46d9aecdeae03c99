"""The main pages pass axe-core (no serious or critical violations) and work by keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.process import Server
from tests.ui.conftest import FIXTURES, Browsing, post_events, redact

AXE = FIXTURES / "axe.min.js"
_RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""


@pytest.fixture
def audited(browser: Any, server: Server) -> Iterator[Browsing]:
    """A context that lets the test inject axe-core past the pages' Content-Security-Policy."""
    session = Browsing(browser, server, bypass_csp=True)
    yield session
    session.context.close()
    assert session.outside == []


@pytest.fixture(scope="module")
def event_id(server: Server) -> str:
    (event,) = post_events(
        server,
        [
            {
                "action": "document.update",
                "category": "users",
                "outcome": "success",
                "actor": {"id": "u-1", "email": "bob@x.io"},
                "target": {"type": "document", "id": "doc-9"},
                "old": {"status": "draft"},
                "new": {"status": "final"},
                "metadata": {"model": "gpt-4o", "nested": {"k": [1, 2]}},
            }
        ],
    )
    redact(server, event["id"], ["actor.email"])
    return str(event["id"])


def _serious(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE)
    return [v for v in violations if v["impact"] in ("serious", "critical")]


class TestAxe:
    """axe-core finds no serious or critical violation on the sign-in, list and event pages."""

    def test_sign_in(self, audited: Browsing) -> None:
        audited.page.goto(audited.url("/ui/signin"))
        assert _serious(audited.page) == []

    def test_list_with_error(self, audited: Browsing, event_id: str) -> None:
        audited.sign_in()
        page = audited.page
        page.locator("#histogram .bar-button").first.wait_for()
        assert _serious(page) == []
        page.goto(audited.url("/ui/?q=(oops&category=users"))
        page.locator("#q-error").wait_for()
        assert _serious(page) == []

    def test_event(self, audited: Browsing, event_id: str) -> None:
        audited.sign_in()
        state, _ = audited.verification(event_id)
        assert state == "verified"
        assert _serious(audited.page) == []


class TestKeyboard:
    """Signing in, searching and opening an event need no mouse."""

    def test_by_keyboard(self, browsing: Browsing, event_id: str) -> None:
        page = browsing.page
        page.goto(browsing.url("/ui/signin"))
        page.keyboard.press("Tab")  # the skip link
        page.keyboard.press("Tab")
        focused = "document.activeElement && document.activeElement.textContent"
        assert page.evaluate(focused)
        page.focus("input[name=token]")
        page.keyboard.type(browsing.server.tokens["reader"])
        page.keyboard.press("Enter")
        page.wait_for_url(browsing.url("/ui/"))
        page.focus("input[name=q]")
        page.keyboard.type("category:users")
        page.keyboard.press("Enter")
        page.wait_for_url("**q=category*")
        link = page.locator(f"#events tbody tr[data-id='{event_id}'] a")
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/ui/events/{event_id}")
        page.locator("[data-verification=verified]").wait_for()

"""Take the viewer's screenshots in docs/img/ (``python -m tests.ui.screenshots``).

Starts a real server on a scratch database, writes a morning's worth of plausible events, and
photographs the main pages in headless Chromium (desktop and phone sizes).
"""

from __future__ import annotations

import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.process import Server, provision, serving
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, Browsing, post_events, redact

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
PEOPLE = [
    ("u-17", "Alice Liddell", "alice@acme.io", "admin"),
    ("u-23", "Bob Marley", "bob@acme.io", "editor"),
    ("u-42", "Zoë Ünal", "zoe@acme.io", "viewer"),
    ("agent-7", "release-bot", "", "service"),
]
ACTIONS = [
    ("document.update", "users", "document", "Updated the quarterly report"),
    ("user.login", "users", "session", "Signed in"),
    ("agent.invoke", "agents", "workflow", "Ran the nightly reconciliation"),
    ("tool.call", "tools", "tool", "Called search_tickets"),
    ("integration.sync", "integrations", "integration", "Synced 120 contacts from the CRM"),
]


def _events(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    events = []
    for i in range(160):
        person = rng.choice(PEOPLE)
        action, category, target, message = rng.choice(ACTIONS)
        when = now - timedelta(minutes=rng.triangular(0, 360, 60))
        events.append(
            {
                "timestamp": when.isoformat().replace("+00:00", "Z"),
                "action": action,
                "category": category,
                "outcome": "failure" if rng.random() < 0.12 else "success",
                "actor": {
                    "id": person[0],
                    "name": person[1],
                    "email": person[2] or None,
                    "role": person[3],
                },
                "target": {"type": target, "id": f"{target[:3]}-{rng.randrange(1, 40)}"},
                "source": {
                    "ip": f"10.0.{rng.randrange(4)}.{rng.randrange(2, 250)}",
                    "user_agent": "Mozilla/5.0",
                },
                "message": message,
                "old": {"status": "draft", "pages": 12} if action == "document.update" else None,
                "new": {"status": "final", "pages": 14} if action == "document.update" else None,
                "metadata": {
                    "model": "gpt-4o",
                    "tokens_used": rng.randrange(100, 4000),
                    "run": {"id": f"run-{i}", "attempt": 1},
                },
            }
        )
    return sorted(events, key=lambda e: e["timestamp"])


def _shoot(session: Browsing, name: str, full: bool = False) -> None:
    session.page.screenshot(path=str(DOCS_IMG / name), full_page=full)
    print(DOCS_IMG / name)


def main() -> None:
    from playwright.sync_api import sync_playwright

    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        database = f"sqlite:///{where / 'demo.db'}"
        tokens = provision(database, "acme")
        with serving(database, where / "signing.key", where / "server.log") as (url, process):
            server = Server(url, database, process, tokens, where / "server.log")
            stored = post_events(server, _events(random.Random(4), datetime.now(UTC)))
            shown = next(e for e in reversed(stored) if e["action"] == "document.update")
            redact(server, shown["id"], ["actor.email"])
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                desk = Browsing(browser, server, viewport={"width": 1280, "height": 860})
                desk.page.goto(desk.url("/ui/signin"))
                _shoot(desk, "ui-signin.png")
                desk.sign_in()
                desk.page.locator("#histogram .bar-button").first.wait_for()
                desk.page.locator("#list-status", has_text="events shown").wait_for()
                _shoot(desk, "ui-events.png")
                desk.page.goto(desk.url("/ui/?q=outcome:failure%20AND%20actor.email:"))
                desk.page.locator("#q-error").wait_for()
                _shoot(desk, "ui-search-error.png")
                desk.verification(shown["id"])
                desk.page.click("#verification summary")
                _shoot(desk, "ui-event.png", full=True)
                phone = Browsing(browser, server, viewport={"width": 390, "height": 844},
                                 is_mobile=True, device_scale_factor=1)  # fmt: skip
                phone.sign_in()
                phone.page.locator("#list-status", has_text="events shown").wait_for()
                _shoot(phone, "ui-phone.png")
                browser.close()
                if desk.outside or phone.outside:
                    sys.exit(f"requests left the origin: {desk.outside + phone.outside}")


if __name__ == "__main__":
    main()

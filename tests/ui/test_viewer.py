"""The viewer end to end: a real server process, a real headless Chromium, real clicks."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.process import Server
from tests.ui.conftest import Browsing, post_events, redact
from trailkeep.merkle import Checkpoint
from trailkeep.merkle.keys import Signer

EVENTS: list[dict[str, Any]] = [
    {
        "action": "document.update",
        "category": "users",
        "outcome": "success",
        "actor": {"id": "u-1", "email": "bob@x.io", "name": "Zoë Ünïcode 𝄞"},
        "target": {"type": "document", "id": "doc-9"},
        "message": "Bob updated the quarterly report ✓",
        "old": {"status": "draft", "pages": 3},
        "new": {"status": "final", "pages": 4.5, "tags": ["q4"]},
        "metadata": {"model": "gpt-4o", "nested": {"ключ": "значение", "\U0001d11e": [1, 2.5]}},
    },
    {
        "action": "user.login",
        "category": "users",
        "outcome": "failure",
        "actor": {"id": "u-2", "email": "alice@x.io"},
        "source": {"ip": "10.0.0.7", "user_agent": "curl/8.0"},
    },
    {"action": "agent.invoke", "category": "agents", "outcome": "success", "message": "ran"},
]


@pytest.fixture(scope="module")
def stored(server: Server) -> list[dict[str, Any]]:
    """The module's events, newest last; the second one's email erased."""
    events = post_events(server, EVENTS)
    redact(server, events[1]["id"], ["actor.email"])
    return events


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


class TestSignIn:
    """A key signs in (its tenant shown); a bad key is refused in place; sign-out forgets it."""

    def test_root_leads_to_sign_in(self, browsing: Browsing) -> None:
        browsing.page.goto(browsing.url("/"))
        assert urlsplit(browsing.page.url).path == "/ui/signin"

    def test_bad_key_is_refused(self, browsing: Browsing) -> None:
        page = browsing.page
        page.goto(browsing.url("/ui/signin"))
        page.fill("input[name=token]", "tk_not_a_key")
        page.click("button[type=submit]")
        page.locator("#signin-error", has_text="not valid").wait_for()
        assert page.get_attribute("input[name=token]", "aria-invalid") == "true"
        assert urlsplit(page.url).path == "/ui/signin"

    def test_sign_in_and_out(self, browsing: Browsing, stored: list[dict[str, Any]]) -> None:
        browsing.sign_in()
        page = browsing.page
        assert page.inner_text("#tenant") == "Tenant acme"
        assert page.evaluate("sessionStorage.getItem('trailkeep.token')") is not None
        assert page.evaluate("localStorage.getItem('trailkeep.token')") is None
        page.click("#signout")
        page.wait_for_url("**/ui/signin")
        assert page.evaluate("sessionStorage.getItem('trailkeep.token')") is None


class TestPinnedKey:
    """A key pinned at sign-in is what checkpoints are checked against; a wrong one fails."""

    def test_malformed_pin_is_refused(self, browsing: Browsing) -> None:
        page = browsing.page
        page.goto(browsing.url("/ui/signin"))
        page.fill("input[name=token]", browsing.server.tokens["reader"])
        page.click("details summary")
        page.fill("input[name=pin]", "not-a-key")
        page.click("button[type=submit]")
        page.locator("#signin-error", has_text="verifier key").wait_for()

    def test_other_key_fails_verification(
        self, browsing: Browsing, stored: list[dict[str, Any]]
    ) -> None:
        other = Signer.generate("trailkeep.local").verifier().key_string()
        page = browsing.page
        page.goto(browsing.url("/ui/signin"))
        page.fill("input[name=token]", browsing.server.tokens["reader"])
        page.click("details summary")
        page.fill("input[name=pin]", other)
        page.click("button[type=submit]")
        page.wait_for_url(browsing.url("/ui/"))
        page.locator("#consistency[data-consistency=inconsistent]").wait_for()  # key changed
        state, text = browsing.verification(stored[0]["id"])
        assert state == "failed"
        assert "no signature by the pinned key" in text


class TestEventTable:
    """Newest first; search with errors shown at their position; facets narrow by a click."""

    def test_newest_first(self, browsing: Browsing, stored: list[dict[str, Any]]) -> None:
        browsing.sign_in()
        rows = browsing.page.locator("#events tbody tr")
        rows.first.wait_for()
        seqs = [int(s) for s in rows.evaluate_all("rs => rs.map(r => r.dataset.seq)")]
        assert seqs == sorted(seqs, reverse=True)
        assert {e["id"] for e in stored} <= set(
            rows.evaluate_all("rs => rs.map(r => r.dataset.id)")
        )

    def test_good_query(self, browsing: Browsing, stored: list[dict[str, Any]]) -> None:
        browsing.sign_in()
        page = browsing.page
        page.fill("input[name=q]", 'outcome:failure actor.id:"u-2"')
        page.press("input[name=q]", "Enter")
        page.wait_for_url("**/ui/?q=*")
        page.locator("#list-status", has_text="events shown").wait_for()
        ids = page.locator("#events tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert ids == [stored[1]["id"]]
        assert page.locator("#q-error").is_hidden()

    @pytest.mark.parametrize(
        ("query", "position", "reason"),
        [
            pytest.param("outcome:x AND actor.email:", 26, "expected a value", id="missing-value"),
            pytest.param("(deploy OR build", 0, "unbalanced '('", id="unbalanced"),
            pytest.param("seq>ten", 4, "whole number", id="bad-number"),
        ],
    )
    def test_bad_query_error_at_its_position(
        self, browsing: Browsing, query: str, position: int, reason: str
    ) -> None:
        browsing.sign_in()
        page = browsing.page
        page.fill("input[name=q]", query)
        page.press("input[name=q]", "Enter")
        error = page.locator("#q-error")
        error.wait_for()
        assert error.get_attribute("data-position") == str(position)
        assert reason in error.inner_text()
        marked = page.inner_text("#q-error mark.at")
        assert marked == (query[position : position + 1] or " ")
        assert page.get_attribute("input[name=q]", "aria-invalid") == "true"
        assert page.evaluate("document.getElementById('q').selectionStart") == position

    def test_bad_time_is_shown(self, browsing: Browsing) -> None:
        browsing.sign_in()
        browsing.page.goto(browsing.url("/ui/?start=yesterday-ish"))
        browsing.page.locator("#time-error", has_text="start").wait_for()
        assert browsing.page.get_attribute("#start", "aria-invalid") == "true"

    def test_facet_chip_filters(self, browsing: Browsing, stored: list[dict[str, Any]]) -> None:
        browsing.sign_in()
        page = browsing.page
        chip = page.locator("a.chip[data-facet=category][data-value=agents]")
        assert "1" in chip.inner_text()  # its count from /v1/facets
        chip.click()
        page.wait_for_url("**category=agents*")
        page.locator("#list-status", has_text="events shown").wait_for()
        ids = page.locator("#events tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert ids == [stored[2]["id"]]
        active = page.locator("#active [data-remove=category]")
        assert active.inner_text().startswith("category: agents")
        active.click()
        page.wait_for_url(lambda url: "category" not in url)

    def test_time_range_preset(self, browsing: Browsing, stored: list[dict[str, Any]]) -> None:
        browsing.sign_in()
        page = browsing.page
        page.select_option("#range", "now-1h")
        page.wait_for_url("**start=now-1h*")
        page.locator("#list-status", has_text="events shown").wait_for()
        assert page.input_value("#start") == "now-1h"

    def test_histogram_bar_narrows_range(
        self, browsing: Browsing, stored: list[dict[str, Any]]
    ) -> None:
        browsing.sign_in()
        page = browsing.page
        # The last bar with events: the range may have crossed into an empty bucket since.
        bar = page.locator("#histogram .bar-button:not([aria-label^='0 events'])").last
        bar.click()
        page.wait_for_url("**end=*")
        query = _query(page.url)
        assert query["start"][0] < query["end"][0]
        assert query["start"][0] <= stored[-1]["timestamp"] < query["end"][0]
        page.locator("#list-status", has_text="events shown").wait_for()

    def test_cursor_paging(self, browsing: Browsing, server: Server) -> None:
        post_events(server, [{"action": "bulk.page", "category": "bulk"} for _ in range(60)])
        browsing.sign_in()
        page = browsing.page
        page.goto(browsing.url("/ui/?category=bulk"))
        page.locator("#list-status", has_text="50 events shown").wait_for()
        page.click("#more")
        page.locator("#list-status", has_text="60 events shown").wait_for()
        assert page.locator("#more").is_hidden()


class TestLiveAndExport:
    """Live mode shows events as they are written; export downloads the selection."""

    def test_live(self, browsing: Browsing, server: Server) -> None:
        browsing.sign_in()
        page = browsing.page
        page.locator("#list-status", has_text="events shown").wait_for()
        page.click("#live")
        page.locator("#live-status", has_text="Following").wait_for()
        (event,) = post_events(server, [{"action": "live.arrival", "message": "just now"}])
        page.locator(f"#events tbody tr.fresh[data-id='{event['id']}']").wait_for()
        assert page.locator("#events tbody tr").first.get_attribute("data-id") == event["id"]
        page.click("#live")
        assert page.get_attribute("#live", "aria-pressed") == "false"

    def test_export_jsonl(
        self, browsing: Browsing, stored: list[dict[str, Any]], tmp_path: Path
    ) -> None:
        browsing.sign_in()
        page = browsing.page
        page.goto(browsing.url("/ui/?category=users"))
        page.locator("#list-status", has_text="events shown").wait_for()
        with page.expect_download() as info:
            page.click("#export")
        target = tmp_path / "export.jsonl"
        info.value.save_as(target)
        lines = [json.loads(line) for line in target.read_text().splitlines()]
        assert lines[0]["format"] == "trailkeep-export/v1"
        assert {r["event"]["id"] for r in lines[1:]} == {stored[0]["id"], stored[1]["id"]}
        page.locator("#export-status", has_text="Downloaded").wait_for()
        assert page.locator("#export-progress").evaluate("p => p.value") == 1


def _proof(server: Server, event_id: str) -> dict[str, Any]:
    """The event's proof, once a signed checkpoint covers it (one is signed every second or so)."""
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(
            f"{server.url}/v1/events/{event_id}/proof", headers=server.auth("reader")
        )
        if response.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 200, response.text
    proof: dict[str, Any] = response.json()
    return proof


class TestEventPage:
    """Every field shown; verified in the browser; a tampered row fails; pruned shows pruned."""

    @pytest.mark.parametrize(
        "index",
        [pytest.param(0, id="non-ascii-diff-metadata"), pytest.param(1, id="erased-email")],
    )
    def test_verified(self, browsing: Browsing, stored: list[dict[str, Any]], index: int) -> None:
        browsing.sign_in()
        state, text = browsing.verification(stored[index]["id"])
        assert state == "verified", text
        assert "WebCrypto Ed25519" in browsing.page.inner_text("#integrity")

    def test_verified_with_the_vendored_ed25519(
        self, browsing: Browsing, stored: list[dict[str, Any]]
    ) -> None:
        browsing.sign_in()
        state, text = browsing.verification(stored[0]["id"], "?ed25519=fallback")
        assert state == "verified", text
        assert "noble-ed25519" in browsing.page.inner_text("#integrity")

    def test_fields_diff_tree_and_erased(
        self, browsing: Browsing, stored: list[dict[str, Any]]
    ) -> None:
        browsing.sign_in()
        page = browsing.page
        browsing.verification(stored[0]["id"])
        assert "Zoë Ünïcode 𝄞" in page.inner_text("#actor")
        assert "doc-9" in page.inner_text("#target")
        changes = dict(
            page.locator("#diff tbody tr").evaluate_all(
                "rs => rs.map(r => [r.cells[0].textContent, r.dataset.change])"
            )
        )
        assert changes == {"pages": "changed", "status": "changed", "tags.0": "added"}
        assert "значение" in page.inner_text("#metadata")
        browsing.verification(stored[1]["id"])
        assert page.locator("#actor .badge.erased").count() == 1
        assert "10.0.0.7" in page.inner_text("#source")

    def test_tampered_row_fails(self, browsing: Browsing, server: Server) -> None:
        (event,) = post_events(server, [{"action": "payment.approve", "message": "EUR 10"}])
        browsing.sign_in()
        first = browsing.verification(event["id"])
        assert first[0] == "verified", first
        path = server.database.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            (body,) = db.execute("SELECT body FROM events WHERE id = ?", (event["id"],)).fetchone()
            content = json.loads(bytes(body))
            content["message"] = "EUR 10000"
            db.execute(
                "UPDATE events SET body = ? WHERE id = ?", (json.dumps(content), event["id"])
            )
        db.close()
        state, text = browsing.verification(event["id"])
        assert state == "failed"
        assert "does not match" in text
        assert "EUR 10000" in browsing.page.inner_text("#summary")

    def test_pruned(self, browsing: Browsing, server: Server) -> None:
        """An event pruned for real (``POST /v1/tenant/prune``) reads as pruned, never as
        missing: the page shows the retention contract's stub and its leaf's proof."""
        (event,) = post_events(
            server, [{"timestamp": "2020-01-02T03:04:05Z", "action": "invoice.send",
                      "message": "content that retention deletes"}],
        )  # fmt: skip
        admin = server.auth("admin")
        setting = httpx.put(f"{server.url}/v1/tenant", json={"retention_days": 365}, headers=admin)
        assert setting.status_code == 200, setting.text
        try:
            run = httpx.post(f"{server.url}/v1/tenant/prune", json={}, headers=admin, timeout=30)
        finally:
            cleared = httpx.put(
                f"{server.url}/v1/tenant", json={"retention_days": None}, headers=admin
            )
        assert run.status_code == 200, run.text
        assert cleared.status_code == 200, cleared.text
        assert run.json()["pruned"] == 1, run.text
        stub = httpx.get(f"{server.url}/v1/events/{event['id']}", headers=server.auth("reader"))
        assert stub.status_code == 200, stub.text
        assert stub.json() == {
            "id": event["id"], "seq": event["seq"], "hash": event["hash"], "pruned": True
        }  # fmt: skip
        browsing.sign_in()
        page = browsing.page
        state, text = browsing.verification(event["id"])
        assert state == "pruned", text
        assert "still at index" in text
        assert page.locator("#summary .badge.pruned").count() == 1
        assert "content that retention deletes" not in page.content()

    def test_pruned_with_its_proof(
        self, browsing: Browsing, server: Server, stored: list[dict[str, Any]]
    ) -> None:
        """A proof whose event is the pruned stub: the leaf is still proven to be in the log."""
        event = stored[2]
        proof = _proof(server, event["id"])
        proof["event"] = {"id": event["id"], "seq": event["seq"], "hash": event["hash"],
                          "pruned": True}  # fmt: skip
        proof["salts"], proof["redacted"] = {}, {}
        browsing.sign_in()
        page = browsing.page
        page.route(f"**/v1/events/{event['id']}/proof", lambda route: route.fulfill(json=proof))
        state, text = browsing.verification(event["id"])
        assert state == "pruned", text
        assert "still at index" in text

    def test_unknown_event(self, browsing: Browsing) -> None:
        browsing.sign_in()
        state, text = browsing.verification("evt_00000000000000000000000000")
        assert state == "failed"
        assert "not found" in text.lower() or "no event" in text.lower()


def _forged_checkpoint(server: Server, size: int) -> str:
    """A checkpoint signed with the server's own key but a root no tree of that size has."""
    signer = Signer.parse((Path(server.log_path).parent / "signing.key").read_text().strip())
    forged = Checkpoint("trailkeep.local/acme", size, bytes(range(32)))
    return signer.sign_note(forged.to_body())


def _remembered(page: Any) -> dict[str, Any]:
    """The checkpoint the page remembers for acme's log, once it has one."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        seen = page.evaluate("localStorage.getItem('trailkeep.checkpoint:trailkeep.local/acme')")
        if seen:
            record: dict[str, Any] = json.loads(seen)
            return record
        time.sleep(0.1)
    raise AssertionError("the page remembered no checkpoint")


class TestCheckpointMemory:
    """The browser remembers the last checkpoint and warns about one inconsistent with it."""

    def test_consistent_checkpoints(self, browsing: Browsing, server: Server) -> None:
        browsing.sign_in()
        page = browsing.page
        _remembered(page)
        post_events(server, [{"action": "grow.log"}])
        page.reload()
        page.locator("#consistency[data-consistency=consistent]").wait_for(state="attached")
        assert page.locator("#consistency").is_hidden()

    def test_inconsistent_checkpoint_warns(self, browsing: Browsing, server: Server) -> None:
        browsing.sign_in()
        page = browsing.page
        _remembered(page)
        forged = _forged_checkpoint(server, int(_remembered(page)["size"]))
        page.route("**/v1/log/checkpoint", lambda route: route.fulfill(body=forged))
        page.reload()
        banner = page.locator("#consistency[data-consistency=inconsistent]")
        banner.wait_for()
        assert "not consistent" in banner.inner_text()
        # The remembered checkpoint is still the genuine one.
        assert base64.b64decode(_remembered(page)["root"]) != bytes(range(32))


@pytest.fixture
def phone(browser: Any, server: Server) -> Iterator[Browsing]:
    session = Browsing(
        browser, server, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    yield session
    session.context.close()
    assert session.outside == []


class TestPhone:
    """On a phone-sized screen nothing is wider than the screen and everything is reachable."""

    def test_pages_fit(self, phone: Browsing, stored: list[dict[str, Any]]) -> None:
        phone.sign_in()
        page = phone.page
        page.locator("#list-status", has_text="events shown").wait_for()
        fits = "document.documentElement.scrollWidth <= window.innerWidth"
        assert page.evaluate(fits)
        assert page.locator("#events tbody tr").first.is_visible()
        assert not page.locator("#facets").is_visible()  # folded, one tap away
        page.click("#facets-box summary")
        assert page.locator("#facets").is_visible()
        state, _ = phone.verification(stored[0]["id"])
        assert state == "verified"
        assert page.evaluate(fits)


class TestHistogramDrag:
    """Dragging across histogram bars narrows the range to the span they cover."""

    def test_drag(self, browsing: Browsing, server: Server) -> None:
        hours = ["2026-01-05T09:10:00Z", "2026-01-05T10:20:00Z", "2026-01-05T11:30:00Z"]
        post_events(server, [{"action": "spread.out", "category": "spread", "timestamp": t}
                             for t in hours])  # fmt: skip
        browsing.sign_in()
        page = browsing.page
        page.goto(browsing.url("/ui/?category=spread"))
        bars = page.locator("#histogram .bar-button")
        bars.nth(2).wait_for()
        assert bars.count() == 3
        first, last = bars.nth(0).bounding_box(), bars.nth(2).bounding_box()
        assert first
        assert last
        page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] - 2)
        page.mouse.down()
        page.mouse.move(last["x"] + last["width"] / 2, last["y"] + last["height"] - 2, steps=5)
        page.mouse.up()
        page.wait_for_url("**end=*")
        query = _query(page.url)
        assert query["start"] == ["2026-01-05T09:00:00.000000Z"]
        assert query["end"] == ["2026-01-05T12:00:00.000000Z"]
        page.locator("#list-status", has_text="3 events shown").wait_for()


class TestApiDocsOffline:
    """`/docs` (Swagger UI) renders with nothing fetched from outside the server's origin."""

    def test_docs(self, browsing: Browsing) -> None:
        browsing.page.goto(browsing.url("/docs"))
        browsing.page.locator(".swagger-ui .opblock").first.wait_for()

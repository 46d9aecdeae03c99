"""A real ``trailkeep serve`` stops promptly on SIGTERM, even with live streams open."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.process import running_server


def _read_stream(
    url: str, headers: dict[str, str], lines: list[str], opened: threading.Event
) -> None:
    try:
        with (
            httpx.Client(base_url=url, timeout=httpx.Timeout(5, read=120)) as http,
            http.stream("GET", "/v1/stream", params={"after_seq": -1}, headers=headers) as resp,
        ):
            opened.set()
            for line in resp.iter_lines():
                lines.append(line)
    except httpx.HTTPError as exc:  # a stream cut without its last event: recorded, asserted
        lines.append(f"!! {type(exc).__name__}")
    finally:
        opened.set()


class TestSigterm:
    """SIGTERM ends open streams with a reconnect event and the process exits within grace."""

    def test_open_streams_end_with_reconnect_and_process_exits(self, tmp_path: Path) -> None:
        env = {"TRAILKEEP_SHUTDOWN_GRACE": "5"}
        with running_server(tmp_path, env) as server:
            posted = httpx.post(
                f"{server.url}/v1/events", json={"action": "login"}, headers=server.auth("writer")
            )
            assert posted.status_code == 201, posted.text
            readers = []
            for _ in range(3):
                lines: list[str] = []
                opened = threading.Event()
                thread = threading.Thread(
                    target=_read_stream,
                    args=(server.url, server.auth("reader"), lines, opened),
                    daemon=True,
                )
                thread.start()
                assert opened.wait(10)
                readers.append((thread, lines))
            deadline = time.monotonic() + 10
            while not all("event: event" in lines for _, lines in readers):
                assert time.monotonic() < deadline, "streams did not deliver the event"
                time.sleep(0.05)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=30)
            took = time.monotonic() - started
            for thread, _ in readers:
                thread.join(timeout=10)
            assert took < 5.0, f"exit took {took:.1f} s with open streams (grace 5 s)"
            for _, lines in readers:
                assert "event: reconnect" in lines, lines
                at = lines.index("event: reconnect")
                assert lines[at - 1] == "id: 0"  # resume after the event already delivered
                assert lines[at + 1].startswith("data: {")
            log = server.log_path.read_text()
            assert "Traceback" not in log, log

    def test_grace_period_cuts_requests_that_do_not_finish(self, tmp_path: Path) -> None:
        """A stream whose client stops reading cannot end by itself; the grace period ends it."""
        env = {"TRAILKEEP_SHUTDOWN_GRACE": "1.5", "TRAILKEEP_STREAM_HEARTBEAT": "0.01"}
        with running_server(tmp_path, env) as server:
            big = {"action": "bulk", "message": "x" * 60_000}
            for _ in range(3):
                resp = httpx.post(
                    f"{server.url}/v1/events/batch",
                    json={"events": [big] * 40},
                    headers=server.auth("writer"),
                    timeout=30,
                )
                assert resp.status_code == 201, resp.text
            with (
                httpx.Client(base_url=server.url, timeout=30) as http,
                http.stream(
                    "GET", "/v1/stream", params={"after_seq": -1}, headers=server.auth("reader")
                ) as resp,
            ):
                assert resp.status_code == 200
                time.sleep(1.0)  # ~7 MB waiting for a client that reads nothing
                started = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                server.process.wait(timeout=30)
                took = time.monotonic() - started
            assert took < 1.5 + 2.0, f"exit took {took:.1f} s (grace 1.5 s)"

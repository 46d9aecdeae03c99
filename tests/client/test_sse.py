"""The SSE decoder and a stream session's bookkeeping, with no I/O."""

from __future__ import annotations

import pytest

from trailkeep.client._sse import SSEDecoder, SSEMessage
from trailkeep.client._stream import StreamSession
from trailkeep.client.errors import AuthenticationError, ConnectError, ServerError


def decode(text: str) -> list[SSEMessage]:
    decoder = SSEDecoder()
    return [m for line in text.split("\n") if (m := decoder.feed(line)) is not None]


class TestSSEDecoder:
    """Lines become messages as the event-stream grammar says."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("data: x\n\n", [SSEMessage("message", "x", None)], id="default-type"),
            pytest.param("event: e\nid: 7\ndata: a\ndata: b\n\n",
                         [SSEMessage("e", "a\nb", "7")], id="multi-line-data"),
            pytest.param("data:no-space\n\n", [SSEMessage("message", "no-space", None)],
                         id="no-space-after-colon"),
            pytest.param(": keepalive\n\n", [SSEMessage("", "", None, comment="keepalive")],
                         id="comment"),
            pytest.param("retry: 500\nid: 3\n\n", [SSEMessage("message", "", "3", 500)],
                         id="id-without-data"),
            pytest.param("data: x", [], id="incomplete"),
            pytest.param("retry: soon\nbogus: 1\n\n", [], id="ignored-fields"),
        ],
    )  # fmt: skip
    def test_messages(self, text: str, expected: list[SSEMessage]) -> None:
        assert decode(text) == expected


class TestStreamSession:
    """A session remembers the position to resume from and when to give up."""

    def test_resumes_from_the_last_id(self) -> None:
        session = StreamSession([("action", "a")], None, timeout=None, idle_timeout=45,
                                max_reconnects=3)  # fmt: skip
        assert "Last-Event-ID" not in session.call().headers
        for line in ("retry: 1000", "id: 9", ": stream of acme", ""):
            assert session.feed(line) is None  # the opening block: a position, no event
        assert session.call().headers["Last-Event-ID"] == "9"
        for line in ("id: 12", "event: event", 'data: {"seq": 12}'):
            session.feed(line)
        message = session.feed("")
        assert message is not None
        assert message.event == "event"
        assert session.call().headers["Last-Event-ID"] == "12"
        assert list(session.call().params) == [("action", "a")]

    def test_never_reached_fails_at_once(self) -> None:
        """A server that was never reached has nothing to resume: no silent 16 s of retries."""
        session = StreamSession([], -1, timeout=None, idle_timeout=45, max_reconnects=5)
        with pytest.raises(ConnectError):
            session.dropped(ConnectError("down"))

    def test_backs_off_then_gives_up(self) -> None:
        session = StreamSession([], -1, timeout=None, idle_timeout=45, max_reconnects=2)
        error = ConnectError("down")
        session.connected()  # it worked once, then the server went away
        assert session.dropped(error) == 0.1
        assert session.dropped(error) == 1.0
        with pytest.raises(ConnectError):
            session.dropped(error)
        session.connected()  # a working connection resets the count
        assert session.dropped(None) == 0.1

    @pytest.mark.parametrize(
        ("error", "retried"),
        [
            pytest.param(AuthenticationError("no", status=401), False, id="401"),
            pytest.param(ServerError("busy", status=503), True, id="503"),
        ],
    )
    def test_what_is_worth_reconnecting(self, error: Exception, retried: bool) -> None:
        session = StreamSession([], None, timeout=None, idle_timeout=45, max_reconnects=5)
        if retried:
            assert session.dropped(error) > 0  # type: ignore[arg-type]
        else:
            with pytest.raises(AuthenticationError):
                session.dropped(error)  # type: ignore[arg-type]

    def test_deadline(self) -> None:
        now = [100.0]
        session = StreamSession([], None, timeout=5, idle_timeout=45, max_reconnects=5,
                                clock=lambda: now[0])  # fmt: skip
        assert session.read_timeout() == 5
        now[0] = 104.0
        assert not session.expired()
        assert session.dropped(None) == pytest.approx(0.1)
        now[0] = 105.0
        assert session.expired()

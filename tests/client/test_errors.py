"""Error mapping and retries, against scripted answers (``httpx.MockTransport``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from trailkeep.client import (
    AsyncClient,
    AuditError,
    AuthenticationError,
    Client,
    ConflictError,
    ConnectError,
    ForbiddenError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
)
from trailkeep.errors import TrailkeepError

Handler = Callable[[httpx.Request], httpx.Response]


def error(status: int, code: str = "X", message: str = "m", **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """Answers requests from a list, one per request, recording what was asked."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(script: Handler, **options: Any) -> Client:
    return Client("http://tk.test", token="t", transport=httpx.MockTransport(script), **options)


OK_PAGE = httpx.Response(200, json={"events": [], "next_cursor": None})


class TestErrorMapping:
    """Every answer that is not 2xx becomes an AuditError subclass with code, message, status."""

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            pytest.param(400, ValidationError, id="400"),
            pytest.param(401, AuthenticationError, id="401"),
            pytest.param(403, ForbiddenError, id="403"),
            pytest.param(404, NotFoundError, id="404"),
            pytest.param(409, ConflictError, id="409"),
            pytest.param(413, ValidationError, id="413"),
            pytest.param(422, ValidationError, id="422"),
            pytest.param(429, RateLimitError, id="429"),
            pytest.param(500, ServerError, id="500"),
            pytest.param(503, ServerError, id="503"),
            pytest.param(418, AuditError, id="418-other"),
        ],
    )
    def test_status(self, status: int, cls: type[AuditError]) -> None:
        with (
            client(Script(error(status, "SOME_CODE", "what went wrong")), max_retries=0) as tk,
            pytest.raises(cls) as caught,
        ):
            tk.describe("evt_1")
        exc = caught.value
        assert type(exc) is cls
        assert (exc.status, exc.code, exc.message) == (status, "SOME_CODE", "what went wrong")
        assert isinstance(exc, TrailkeepError)
        assert str(exc) == f"{status} SOME_CODE: what went wrong"

    @pytest.mark.parametrize(
        ("header", "seconds"),
        [
            pytest.param("7", 7.0, id="delta-seconds"),
            pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="http-date-past"),
            pytest.param("soon", None, id="garbage"),
        ],
    )
    def test_retry_after(self, header: str, seconds: float | None) -> None:
        answer = error(429, "RATE_LIMITED", "slow down", **{"Retry-After": header})
        with client(Script(answer), max_retries=0) as tk, pytest.raises(RateLimitError) as caught:
            tk.list()
        assert caught.value.retry_after == seconds

    def test_body_that_is_not_ours(self) -> None:
        with (
            client(
                Script(httpx.Response(502, text="<html>bad gateway</html>")), max_retries=0
            ) as tk,
            pytest.raises(ServerError) as caught,
        ):
            tk.list()
        assert caught.value.code == "HTTP_502"
        assert "bad gateway" in caught.value.message

    @pytest.mark.parametrize(
        ("raised", "cls"),
        [
            pytest.param(httpx.ConnectError("refused"), ConnectError, id="connect"),
            pytest.param(httpx.ReadTimeout("slow"), RequestTimeoutError, id="timeout"),
            pytest.param(httpx.RemoteProtocolError("eof"), TransportError, id="protocol"),
        ],
    )
    def test_transport(self, raised: Exception, cls: type[TransportError]) -> None:
        with client(Script(raised), max_retries=0) as tk, pytest.raises(cls) as caught:
            tk.list()
        assert caught.value.status is None
        assert "http://tk.test" in caught.value.message
        assert caught.value.__cause__ is raised


class TestRetries:
    """Reads and keyed writes are retried; a write that may have landed is not."""

    def test_read_retried_after_503(self) -> None:
        script = Script(error(503), OK_PAGE)
        with client(script) as tk:
            assert len(tk.list()) == 0
        assert len(script.requests) == 2

    def test_read_retried_after_lost_answer(self) -> None:
        script = Script(httpx.ReadError("reset"), OK_PAGE)
        with client(script) as tk:
            tk.list()
        assert len(script.requests) == 2

    def test_rate_limit_waits_as_told(self) -> None:
        script = Script(error(429, **{"Retry-After": "0"}), OK_PAGE)
        with client(script) as tk:
            tk.list()
        assert len(script.requests) == 2

    def test_gives_up_after_max_retries(self) -> None:
        script = Script(error(503))
        with client(script, max_retries=1) as tk, pytest.raises(ServerError):
            tk.list()
        assert len(script.requests) == 2

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    def test_caller_errors_not_retried(self, status: int) -> None:
        script = Script(error(status))
        with client(script) as tk, pytest.raises(AuditError):
            tk.list()
        assert len(script.requests) == 1

    def test_unkeyed_write_not_retried_after_lost_answer(self) -> None:
        script = Script(httpx.ReadError("reset"), httpx.Response(201, json={"id": "e"}))
        with client(script) as tk, pytest.raises(TransportError):
            tk.log(action="a")
        assert len(script.requests) == 1

    def test_keyed_write_retried_after_lost_answer(self) -> None:
        script = Script(httpx.ReadError("reset"), httpx.Response(201, json={"id": "e"}))
        with client(script) as tk:
            assert tk.log(action="a", idempotency_key="k")["id"] == "e"
        assert len(script.requests) == 2

    def test_unsent_write_retried(self) -> None:
        script = Script(httpx.ConnectError("refused"), httpx.Response(201, json={"id": "e"}))
        with client(script) as tk:
            tk.log(action="a")
        assert len(script.requests) == 2


class TestWhatIsSent:
    """Requests carry the credential, the tenant, q, facets' filters and batches ≤ 1000."""

    def test_headers(self) -> None:
        script = Script(OK_PAGE)
        with Client("http://tk.test", token="tok", org_id="acme",
                    transport=httpx.MockTransport(script)) as tk:  # fmt: skip
            tk.list()
        sent = script.requests[0].headers
        assert sent["authorization"] == "Bearer tok"
        assert sent["x-org-id"] == "acme"
        assert sent["user-agent"].startswith("trailkeep-python/")

    def test_token_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TRAILKEEP_TOKEN", "from-env")
        monkeypatch.setenv("TRAILKEEP_URL", "http://env.test:9/")
        script = Script(OK_PAGE)
        with Client(transport=httpx.MockTransport(script)) as tk:
            tk.list()
        assert script.requests[0].headers["authorization"] == "Bearer from-env"
        assert str(script.requests[0].url).startswith("http://env.test:9/v1/events")

    def test_search_sends_q_and_filters(self) -> None:
        script = Script(OK_PAGE)
        with client(script) as tk:
            tk.search('actor.email:"a@x.io" AND NOT outcome:success', actor_id=["u1", "u2"],
                      limit=10, sort="asc")  # fmt: skip
        params = script.requests[0].url.params
        assert params["q"] == 'actor.email:"a@x.io" AND NOT outcome:success'
        assert params.get_list("actor.id") == ["u1", "u2"]
        assert (params["limit"], params["sort"]) == ("10", "asc")

    def test_facets(self) -> None:
        facets = {"actions": [{"value": "login", "count": 3}]}
        script = Script(httpx.Response(200, json=facets))
        with client(script) as tk:
            assert tk.facets("bob", top=3, category="users", start="now-1d") == facets
        request = script.requests[0]
        assert request.url.path == "/v1/facets"
        assert dict(request.url.params) == {
            "category": "users",
            "start": "now-1d",
            "q": "bob",
            "top": "3",
        }

    @pytest.mark.asyncio
    async def test_async_facets(self) -> None:
        script = Script(httpx.Response(200, json={"actions": []}))
        transport = httpx.MockTransport(script)
        async with AsyncClient("http://tk.test", token="t", transport=transport) as tk:
            assert await tk.facets(action="x") == {"actions": []}
        assert script.requests[0].url.params["action"] == "x"

    def test_log_bulk_splits_at_1000(self) -> None:
        sizes: list[int] = []

        def handler(request: httpx.Request) -> httpx.Response:
            events = orjson.loads(request.content)["events"]
            sizes.append(len(events))
            return httpx.Response(201, json={"events": events})

        with client(handler) as tk:
            stored = tk.log_bulk([{"action": "a"}] * 2500)
        assert sizes == [1000, 1000, 500]
        assert len(stored) == 2500

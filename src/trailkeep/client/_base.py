"""The I/O-free core of ``Client`` and ``AsyncClient``: every method is written once here.

Each operation is a generator that yields what it needs done — a :class:`Call` (an HTTP
request) or a :class:`Sleep` (a retry's pause) — and receives the answer; an error (already
an ``AuditError``) is thrown into it, so retries and multi-request methods (paging, pinned
checkpoints, proofs) live here too. ``Client`` drives an operation with blocking httpx calls,
``AsyncClient`` with awaited ones; neither adds logic of its own but streaming.
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
import orjson

from trailkeep import __version__
from trailkeep.errors import IntegrityError
from trailkeep.merkle import Checkpoint, Verifier, parse_note

from ._models import (
    Event,
    ExportFormat,
    ExportInfo,
    Page,
    SignedCheckpoint,
    Sort,
    VerifiedEvent,
    event_body,
    filter_params,
    filter_values,
)
from .errors import (
    AuditError,
    ConnectError,
    InconsistentLogError,
    InvalidArgumentError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
    VerificationError,
)
from .verify import verify_checkpoints, verify_event

__all__ = ["DEFAULT_URL", "BaseClient", "Call", "Op", "RetryPolicy", "Sleep", "new_key"]

T = TypeVar("T")
DEFAULT_URL: Final = "http://127.0.0.1:8000"
#: Most events one batch request may carry (the server's limit).
MAX_BATCH: Final = 1000


#: Asks the ingest routes to answer with each event's place only (docs/api.md).
_PREFER_MINIMAL: Mapping[str, str] = {"Prefer": "return=minimal"}


@dataclass(frozen=True, slots=True)
class Call:
    """An HTTP request to make.

    Attributes:
        repeatable: safe to send again after a lost answer (reads; writes with
            idempotency keys). A request that never reached the server is always retried.
    """

    method: str
    path: str
    params: Sequence[tuple[str, str]] = ()
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    repeatable: bool = True


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


#: An operation: yields calls and sleeps, receives responses (None after a sleep).
Op = Generator[Call | Sleep, httpx.Response | None, T]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a failed request again.

    Retried: a request that never reached the server (connection refused), 429 (after its
    ``Retry-After``) and 503 always; a lost answer, 502 and 504 only for a repeatable call.
    Pauses grow exponentially from ``backoff`` up to ``max_backoff``, with jitter.
    """

    max_retries: int = 2
    backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, call: Call, error: AuditError, attempt: int) -> float | None:
        if attempt >= self.max_retries:
            return None
        pause = min(self.backoff * 2.0**attempt, self.max_backoff) * random.uniform(0.5, 1.0)
        if isinstance(error, RateLimitError):
            return min(error.retry_after, 60.0) if error.retry_after is not None else pause
        if isinstance(error, ConnectError) or (
            isinstance(error, ServerError) and error.status == 503
        ):
            return pause
        lost = isinstance(error, TransportError) or (
            isinstance(error, ServerError) and error.status in (502, 504)
        )
        return pause if lost and call.repeatable else None


def new_key() -> str:
    """A client-generated idempotency key."""
    return f"tk-{uuid.uuid4().hex}"


def _response(answer: httpx.Response | None) -> httpx.Response:
    assert answer is not None, "a driver answered a Call with None"
    return answer


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise AuditError(
            f"{response.request.url} answered {response.status_code} with a body that is not"
            " JSON (is this a trailkeep server?)",
            code="BAD_RESPONSE",
            status=response.status_code,
        ) from None


class BaseClient:
    """Configuration and operations shared by ``Client`` and ``AsyncClient``.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8000``; default ``$TRAILKEEP_URL``.
        token: an API token (``trailkeep keys create``); default ``$TRAILKEEP_TOKEN``.
        org_id: the tenant to act in, for operator keys (sent as ``X-Org-ID``).
        timeout: seconds to wait for a connection and for each read.
        transport: an httpx transport (tests: ``httpx.ASGITransport``, ``httpx.MockTransport``).
        pin_public_key: the log's public key (``GET /v1/log/key``, obtained out of band).
            Every checkpoint the server shows is then verified with it and must be consistent
            with the last one seen, or ``InconsistentLogError`` is raised.
        pinned_checkpoint: a checkpoint note saved from an earlier run (see
            ``pinned_checkpoint``), to keep watching the log across runs.
        max_retries: retries of a failed request (see ``RetryPolicy``).
        headers: extra headers for every request.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        org_id: str | None = None,
        timeout: float = 10.0,
        pin_public_key: str | None = None,
        pinned_checkpoint: str | None = None,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("TRAILKEEP_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("TRAILKEEP_TOKEN")
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries)
        self._headers = {"User-Agent": f"trailkeep-python/{__version__}", **(headers or {})}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if org_id:
            self._headers["X-Org-ID"] = org_id
        self._verifier = self._parse_key(pin_public_key) if pin_public_key else None
        self._pin_lock = threading.Lock()
        self._pinned: SignedCheckpoint | None = None
        if pinned_checkpoint is not None:
            if self._verifier is None:
                raise InvalidArgumentError("pinned_checkpoint needs pin_public_key to verify it")
            self._pinned = self._open(pinned_checkpoint)

    @property
    def pinned_checkpoint(self) -> SignedCheckpoint | None:
        """The newest verified checkpoint seen (pinning mode); save its ``note`` to resume."""
        return self._pinned

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, call: Call, retry: RetryPolicy | None = None) -> Op[httpx.Response]:
        """One call with retries; raises the ``AuditError`` of its last failure."""
        policy = retry or self.retry
        attempt = 0
        while True:
            try:
                return _response((yield call))
            except AuditError as error:
                pause = policy.delay(call, error, attempt)
                if pause is None:
                    raise
            attempt += 1
            yield Sleep(pause)

    def _get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Op[Any]:
        return _json((yield from self._send(Call("GET", path, params))))

    @staticmethod
    def _parse_key(key: str) -> Verifier:
        try:
            return Verifier.parse(key.strip())
        except IntegrityError as exc:
            raise VerificationError.wrap(exc) from exc
        except ValueError as exc:
            raise VerificationError(f"not a public key: {exc}") from None

    # -- write -----------------------------------------------------------------------------

    def _op_log(self, event: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> Op[Event]:
        body = event_body(event, fields)
        call = Call("POST", "/v1/events", json=body, repeatable="idempotency_key" in body)
        stored: Event = _json((yield from self._send(call)))
        return stored

    @staticmethod
    def _batches(events: Sequence[Mapping[str, Any]], size: int) -> list[list[dict[str, Any]]]:
        if not 1 <= size <= MAX_BATCH:
            raise InvalidArgumentError(f"batch_size must be 1..{MAX_BATCH}, got {size}")
        bodies = [event_body(e, {}) for e in events]
        return [bodies[i : i + size] for i in range(0, len(bodies), size)]

    def _op_batch(
        self,
        events: list[dict[str, Any]],
        retry: RetryPolicy | None = None,
        *,
        minimal: bool = False,
    ) -> Op[list[Event]]:
        """Write one batch; the stored events, or with ``minimal`` only where each landed
        (``id``, ``seq``, ``hash``, ``received_at``: ``Prefer: return=minimal``)."""
        repeatable = all("idempotency_key" in e for e in events)
        headers = _PREFER_MINIMAL if minimal else {}
        call = Call(
            "POST",
            "/v1/events/batch",
            json={"events": events},
            headers=headers,
            repeatable=repeatable,
        )
        stored: list[Event] = _json((yield from self._send(call, retry)))["events"]
        return stored

    def _op_log_bulk(self, events: Sequence[Mapping[str, Any]], batch_size: int) -> Op[list[Event]]:
        stored: list[Event] = []
        for batch in self._batches(events, batch_size):
            stored += yield from self._op_batch(batch)
        return stored

    def _op_deliver(
        self, events: list[dict[str, Any]], retry: RetryPolicy
    ) -> Op[list[tuple[AuditError, list[dict[str, Any]]]]]:
        """Write a batch logger's batch; returns what could not be written, and why.

        A batch is all or nothing, so one invalid event would sink its neighbours: a
        ``ValidationError`` splits the batch in halves until the culprits are alone.
        """
        try:  # the logger keeps nothing of the answer: no stored events echoed back
            yield from self._op_batch(events, retry, minimal=True)
        except ValidationError as error:
            if len(events) == 1:
                return [(error, events)]
            half = len(events) // 2
            first = yield from self._op_deliver(events[:half], retry)
            return first + (yield from self._op_deliver(events[half:], retry))
        except AuditError as error:
            return [(error, events)]
        return []

    # -- administration (admin keys) ---------------------------------------------------------

    def _op_redact(self, event_id: str, fields: Sequence[str], reason: str | None) -> Op[Event]:
        body: dict[str, Any] = {"fields": list(fields)}
        if reason:
            body["reason"] = reason
        path = f"/v1/events/{quote(event_id, safe='')}/redact"
        event: Event = _json((yield from self._send(Call("POST", path, json=body))))
        return event

    def _op_tenant(self) -> Op[dict[str, Any]]:
        tenant: dict[str, Any] = yield from self._get_json("/v1/tenant")
        return tenant

    def _op_update_tenant(self, settings: Mapping[str, Any]) -> Op[dict[str, Any]]:
        call = Call("PUT", "/v1/tenant", json=dict(settings))
        tenant: dict[str, Any] = _json((yield from self._send(call)))
        return tenant

    def _op_prune(self, limit: int | None) -> Op[dict[str, Any]]:
        call = Call("POST", "/v1/tenant/prune", json={} if limit is None else {"limit": limit})
        run: dict[str, Any] = _json((yield from self._send(call)))
        return run

    @staticmethod
    def _keys_path(tenant: str) -> str:
        return f"/v1/tenants/{quote(tenant, safe='')}/keys"

    def _op_list_keys(self, tenant: str) -> Op[list[dict[str, Any]]]:
        keys: list[dict[str, Any]] = yield from self._get_json(self._keys_path(tenant))
        return keys

    def _op_create_key(
        self, tenant: str, role: str, name: str, expires: str | None
    ) -> Op[dict[str, Any]]:
        body: dict[str, Any] = {"role": role, "name": name}
        if expires is not None:
            body["expires"] = expires
        # Not repeatable: a lost answer would issue a second key, whose secret nobody saw.
        call = Call("POST", self._keys_path(tenant), json=body, repeatable=False)
        issued: dict[str, Any] = _json((yield from self._send(call)))
        return issued

    def _op_revoke_key(self, tenant: str, client_id: str) -> Op[None]:
        path = f"{self._keys_path(tenant)}/{quote(client_id, safe='')}"
        yield from self._send(Call("DELETE", path))

    # -- read ------------------------------------------------------------------------------

    @staticmethod
    def _list_params(
        filters: Mapping[str, Any],
        q: str | None,
        sort: Sort | None,
        limit: int | None,
        cursor: str | None,
    ) -> list[tuple[str, str]]:
        params = filter_params(filters)
        for name, value in (("q", q), ("sort", sort), ("limit", limit), ("cursor", cursor)):
            if value is not None:
                params.append((name, str(value)))
        return params

    def _op_list(self, params: Sequence[tuple[str, str]]) -> Op[Page]:
        data = yield from self._get_json("/v1/events", params)
        return Page(data["events"], data.get("next_cursor"))

    def _op_describe(self, event_id: str) -> Op[Event]:
        event: Event = yield from self._get_json(f"/v1/events/{quote(event_id, safe='')}")
        return event

    @staticmethod
    def _facet_params(
        filters: Mapping[str, Any], q: str | None, top: int | None
    ) -> list[tuple[str, str]]:
        params = filter_params(filters)
        params += [(name, str(v)) for name, v in (("q", q), ("top", top)) if v is not None]
        return params

    def _op_facets(self, params: Sequence[tuple[str, str]]) -> Op[dict[str, Any]]:
        facets: dict[str, Any] = yield from self._get_json("/v1/facets", params)
        return facets

    # -- exports ---------------------------------------------------------------------------

    def _op_create_export(
        self,
        fmt: ExportFormat,
        q: str | None,
        filters: Mapping[str, Any],
        seq_range: tuple[int | None, int | None] = (None, None),
    ) -> Op[ExportInfo]:
        body: dict[str, Any] = {**filter_values(filters), "format": fmt}
        if q is not None:
            body["q"] = q
        for name, bound in zip(("seq_start", "seq_end"), seq_range, strict=True):
            if bound is not None:
                body[name] = bound
        response = yield from self._send(Call("POST", "/v1/exports", json=body))
        return ExportInfo.from_json(_json(response))

    def _op_get_export(self, export_id: str, count: bool) -> Op[ExportInfo]:
        params = [("count", "true")] if count else []
        data = yield from self._get_json(f"/v1/exports/{quote(export_id, safe='')}", params)
        return ExportInfo.from_json(data)

    @staticmethod
    def _download_call(export_id: str) -> Call:
        return Call("GET", f"/v1/exports/{quote(export_id, safe='')}/download")

    # -- integrity -------------------------------------------------------------------------

    def _open(self, note: str, verifier: Verifier | None = None) -> SignedCheckpoint:
        """Read a checkpoint note, verifying it with ``verifier`` or the pinned key if any."""
        verifier = verifier or self._verifier
        try:
            if verifier is None:
                body = Checkpoint.parse(parse_note(note).text)
            else:
                body = Checkpoint.parse(verifier.verify_note(note))
        except IntegrityError as exc:
            raise VerificationError.wrap(exc) from exc
        return SignedCheckpoint(note, body.origin, body.size, body.root_hash, verifier is not None)

    def _observe(self, note: str, *, latest: bool) -> Op[SignedCheckpoint]:
        """Check a checkpoint the server showed against the pinned one, then pin it if newer.

        Args:
            latest: the server presented it as its newest, so it must not be smaller.
        """
        seen = self._open(note)
        pinned = self._pinned
        if self._verifier is None:
            return seen
        if pinned is None:
            self._pin(seen)
            return seen
        if seen.size < pinned.size and latest:
            raise InconsistentLogError(
                f"the server's latest checkpoint has size {seen.size}, smaller than size"
                f" {pinned.size} seen before: the log was rolled back"
            )
        old, new = (seen, pinned) if seen.size < pinned.size else (pinned, seen)
        yield from self._op_consistent(old, new, self._verifier)
        self._pin(new)
        return seen

    def _pin(self, checkpoint: SignedCheckpoint) -> None:
        with self._pin_lock:
            if self._pinned is None or checkpoint.size > self._pinned.size:
                self._pinned = checkpoint

    def _op_consistent(
        self, old: SignedCheckpoint, new: SignedCheckpoint, verifier: Verifier
    ) -> Op[None]:
        """Prove ``new`` extends ``old`` (both verified) or raise ``InconsistentLogError``."""
        if old.size == new.size:
            if old.root_hash != new.root_hash:
                raise InconsistentLogError(
                    f"two different roots for size {new.size} of {new.origin}: the log forked"
                )
            return
        params = [("from", str(old.size)), ("to", str(new.size))]
        proof = yield from self._get_json("/v1/log/proof/consistency", params)
        try:
            verify_checkpoints(old.note, new.note, proof["hashes"], verifier)
        except IntegrityError as exc:
            raise InconsistentLogError(
                f"checkpoint of size {new.size} does not extend the one of size {old.size}:"
                f" {exc.message}"
            ) from exc

    def _op_public_key(self) -> Op[str]:
        response = yield from self._send(Call("GET", "/v1/log/key"))
        return response.text.strip()

    def _op_verifier(self, public_key: str | None = None) -> Op[Verifier]:
        """The key to verify with: the one given, the pinned one, or (trust on first use)
        the one the server serves."""
        if public_key is not None:
            return self._parse_key(public_key)
        if self._verifier is not None:
            return self._verifier
        return self._parse_key((yield from self._op_public_key()))

    def _op_checkpoint(self) -> Op[SignedCheckpoint]:
        response = yield from self._send(Call("GET", "/v1/log/checkpoint"))
        return (yield from self._observe(response.text, latest=True))

    def _op_proof(self, event_id: str, size: int | None) -> Op[dict[str, Any]]:
        params = [("size", str(size))] if size is not None else []
        path = f"/v1/events/{quote(event_id, safe='')}/proof"
        proof: dict[str, Any] = yield from self._get_json(path, params)
        return proof

    def _op_verify_event(
        self,
        subject: str | Mapping[str, Any],
        proof: Mapping[str, Any] | None,
        public_key: str | None,
    ) -> Op[VerifiedEvent]:
        evidence = yield from self._evidence(subject, proof)
        verifier = yield from self._op_verifier(public_key)
        try:
            verify_event(evidence, verifier)
        except IntegrityError as exc:
            raise VerificationError.wrap(exc) from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationError(f"malformed proof or event: {exc!r}") from None
        checkpoint = self._open(evidence["checkpoint"], verifier)
        if self._verifier is not None:
            yield from self._observe(evidence["checkpoint"], latest=False)
        return VerifiedEvent(evidence["event"], checkpoint)

    def _evidence(
        self, subject: str | Mapping[str, Any], proof: Mapping[str, Any] | None
    ) -> Op[dict[str, Any]]:
        """What ``verify_event`` checks: the caller's copy of the event (or the proof's own),
        the salts, and an inclusion proof to a checkpoint (fetched unless given)."""
        own: dict[str, Any] = {}
        if isinstance(subject, str):
            event_id = subject
        elif "hashes" in subject and "event" in subject:
            proof = subject
            event_id = subject["event"]["id"]
        elif "event" in subject:  # an export record: the event with its salts
            own = {k: subject[k] for k in ("event", "salts", "redacted") if k in subject}
            event_id = subject["event"]["id"]
        else:  # an event as listed: check this very copy
            own = {"event": dict(subject)}
            event_id = subject["id"]
        if proof is None:
            proof = yield from self._op_proof(event_id, None)
        return {**proof, **own}

    def _op_verify_consistency(
        self, old: str | SignedCheckpoint, new: str | SignedCheckpoint | None
    ) -> Op[tuple[SignedCheckpoint, SignedCheckpoint]]:
        verifier = yield from self._op_verifier()
        first = self._open(old if isinstance(old, str) else old.note, verifier)
        if new is None:
            second = yield from self._op_checkpoint()
            second = self._open(second.note, verifier)
        else:
            second = self._open(new if isinstance(new, str) else new.note, verifier)
        if second.size < first.size:
            raise InvalidArgumentError(
                f"new checkpoint (size {second.size}) is older than the old one"
            )
        yield from self._op_consistent(first, second, verifier)
        return first, second

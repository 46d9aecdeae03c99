"""Load-generating worker processes and the coordinator that starts, times and reaps them.

Workers are separate processes (``spawn``), so the server under test shares no interpreter
with them. Each one builds its request bodies before the clock starts, opens its keep-alive
connections, reports ready, waits for the common start signal, then runs until its request
quota or deadline, whichever comes first. It reports what it did and the CPU it used, so a
run can show whether the client side (on the same small machine) was a bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import time
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from typing import Any

__all__ = ["LoadResult", "WorkerSpec", "run_load"]

_MAX_ERRORS = 50
_READY_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker process does.

    Attributes:
        kind: ``"batch"`` (one sync ``httpx.Client``, sequential batches) or ``"single"``
            (``concurrency`` asyncio tasks, one event per request).
        client: for ``"single"``: ``"raw"`` (pre-built HTTP/1.1 bytes on keep-alive
            sockets) or ``"httpx"`` (``httpx.AsyncClient``, ~50x the client CPU).
        requests: the most requests this worker sends.
        seconds: the longest this worker sends for.
        minimal: send ``Prefer: return=minimal`` (answers carry id, seq, hash, received_at).
    """

    kind: str
    url: str
    token: str
    seed: int
    now: datetime
    requests: int
    seconds: float
    batch_size: int = 500
    pool: int = 8
    concurrency: int = 1
    client: str = "raw"
    timestamps: str = "now"
    minimal: bool = False


@dataclass(slots=True)
class LoadResult:
    """What a set of workers did together, measured from the common start."""

    events: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    first_error: str | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _bodies_for(spec: WorkerSpec) -> list[bytes]:
    from _workload import single_bodies

    return single_bodies(spec.seed, min(max(spec.requests, 1), 4096), spec.now, spec.timestamps)


def _stamper(spec: WorkerSpec) -> Any:
    """Bytes → bytes: puts the send time into a pre-encoded request (identity unless ``now``)."""
    from _workload import TS_SLOT, stamp

    if spec.timestamps != "now":
        return lambda data: data
    return lambda data: data.replace(TS_SLOT, stamp())


class _Tally:
    """Counts and latencies of one worker, in the shape the coordinator combines."""

    def __init__(self) -> None:
        self.out: dict[str, Any] = {"events": 0, "requests": 0, "errors": 0, "latencies": [],
                                    "first_error": None}  # fmt: skip

    def record(self, seconds: float, events: int, error: str | None) -> None:
        out = self.out
        out["latencies"].append(seconds)
        out["requests"] += 1
        if error is None:
            out["events"] += events
        else:
            out["errors"] += 1
            out["first_error"] = out["first_error"] or error

    @property
    def failing(self) -> bool:
        return bool(self.out["errors"] >= _MAX_ERRORS)


def _batch_worker(spec: WorkerSpec, ready: Any, go: Any, results: Any) -> None:
    """Sequential batches on one keep-alive ``httpx.Client`` (a few requests a second, cheap)."""
    import httpx

    from _workload import batch_bodies

    bodies = batch_bodies(spec.seed, spec.pool, spec.batch_size, spec.now, spec.timestamps)
    stamped = _stamper(spec)
    headers = _headers(spec)
    tally = _Tally()
    with httpx.Client(base_url=spec.url, headers=headers, timeout=120.0) as client:
        client.get("/healthz")
        ready.put(os.getpid())
        go.wait(_READY_TIMEOUT)
        cpu0, start = _cpu(), time.monotonic()
        deadline = start + spec.seconds
        for i in range(spec.requests):
            if time.monotonic() >= deadline or tally.failing:
                break
            t0 = time.perf_counter()
            try:
                body = stamped(bodies[i % len(bodies)])
                response = client.post("/v1/events/batch", content=body)
                error = (None if response.status_code == 201
                         else f"{response.status_code} {response.text[:300]}")  # fmt: skip
            except httpx.HTTPError as exc:
                error = repr(exc)
            tally.record(time.perf_counter() - t0, spec.batch_size, error)
        tally.out.update(start=start, end=time.monotonic(), cpu=_cpu() - cpu0)
    results.put(tally.out)


async def _single_httpx(spec: WorkerSpec, ready: Any, go: Any) -> dict[str, Any]:
    """One event per request through ``httpx.AsyncClient`` (heavy: ~1.4 ms CPU a request)."""
    import httpx

    bodies = _bodies_for(spec)
    stamped = _stamper(spec)
    headers = _headers(spec)
    limits = httpx.Limits(max_connections=spec.concurrency,
                          max_keepalive_connections=spec.concurrency)  # fmt: skip
    tally = _Tally()
    async with httpx.AsyncClient(base_url=spec.url, headers=headers, limits=limits,
                                 timeout=60.0) as client:  # fmt: skip
        # Open every keep-alive connection before the clock starts.
        await asyncio.gather(*(client.get("/healthz") for _ in range(spec.concurrency)))
        ready.put(os.getpid())
        await asyncio.get_running_loop().run_in_executor(None, go.wait, _READY_TIMEOUT)
        cpu0, start = _cpu(), time.monotonic()
        deadline = start + spec.seconds
        issued = 0

        async def task() -> None:
            nonlocal issued
            while issued < spec.requests and time.monotonic() < deadline and not tally.failing:
                body = stamped(bodies[issued % len(bodies)])
                issued += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post("/v1/events", content=body)
                    error = (None if response.status_code == 201
                             else f"{response.status_code} {response.text[:300]}")  # fmt: skip
                except httpx.HTTPError as exc:
                    error = repr(exc)
                tally.record(time.perf_counter() - t0, 1, error)

        await asyncio.gather(*(task() for _ in range(spec.concurrency)))
        tally.out.update(start=start, end=time.monotonic(), cpu=_cpu() - cpu0)
    return tally.out


class _RawConnection:
    """A minimal HTTP/1.1 keep-alive client for pre-built requests (~30 µs CPU a request).

    It sends bytes prepared before the clock starts and reads one response by its
    ``Content-Length``; anything else (chunked, a closed connection) is an error, which
    is fine for the server under test, whose JSON responses always carry a length.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        if length is None:
            raise ConnectionError(f"response without Content-Length: {head[:200]!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _headers(spec: WorkerSpec) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {spec.token}", "Content-Type": "application/json"}
    if spec.minimal:
        headers["Prefer"] = "return=minimal"
    return headers


def _raw_request(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _single_raw(spec: WorkerSpec, ready: Any, go: Any) -> dict[str, Any]:
    """One event per request over ``concurrency`` raw keep-alive connections."""
    from urllib.parse import urlsplit

    parts = urlsplit(spec.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [_raw_request(f"{host}:{port}", "/v1/events", _headers(spec), b)
                for b in _bodies_for(spec)]  # fmt: skip
    stamped = _stamper(spec)
    conns = [_RawConnection(host, port) for _ in range(spec.concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    ready.put(os.getpid())
    await asyncio.get_running_loop().run_in_executor(None, go.wait, _READY_TIMEOUT)
    tally = _Tally()
    cpu0, start = _cpu(), time.monotonic()
    deadline = start + spec.seconds
    issued = 0

    async def task(conn: _RawConnection) -> None:
        nonlocal issued
        while issued < spec.requests and time.monotonic() < deadline and not tally.failing:
            request = stamped(requests[issued % len(requests)])
            issued += 1
            t0 = time.perf_counter()
            try:
                status, body = await conn.exchange(request)
                error = None if status == 201 else f"{status} {body[:300]!r}"
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                conn.close()
                error = repr(exc)
            tally.record(time.perf_counter() - t0, 1, error)

    try:
        await asyncio.gather(*(task(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    tally.out.update(start=start, end=time.monotonic(), cpu=_cpu() - cpu0)
    return tally.out


def _single_worker(spec: WorkerSpec, ready: Any, go: Any, results: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    run = _single_httpx if spec.client == "httpx" else _single_raw
    results.put(asyncio.run(run(spec, ready, go)))


def _entry(spec: WorkerSpec, ready: Any, go: Any, results: Any) -> None:
    """A worker's main: any failure is reported, never hung on."""
    try:
        if spec.kind == "batch":
            _batch_worker(spec, ready, go, results)
        else:
            _single_worker(spec, ready, go, results)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        results.put({"crash": repr(exc)})


def run_load(specs: list[WorkerSpec], on_start: Any = None, on_end: Any = None) -> LoadResult:
    """Run the workers together and combine what they measured.

    ``on_start``/``on_end`` are called just before the start signal and right after the last
    worker reports (to sample server CPU or start a profiler over exactly the loaded window).

    Raises:
        RuntimeError: a worker crashed or never became ready.
    """
    ctx = get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_entry, args=(s, ready, go, results), daemon=True) for s in specs]
    outs: list[dict[str, Any]] = []
    started: list[Any] = []
    try:
        for p in procs:
            p.start()
            started.append(p)
        for _ in procs:
            try:
                ready.get(timeout=_READY_TIMEOUT)
            except queue.Empty:
                raise RuntimeError("a load worker did not become ready") from None
        if on_start:
            on_start()
        go.set()
        limit = max(s.seconds for s in specs) + 180.0
        deadline = time.monotonic() + limit
        while len(outs) < len(procs):
            try:
                outs.append(results.get(timeout=max(deadline - time.monotonic(), 0.1)))
            except queue.Empty:
                raise RuntimeError(f"load workers did not finish within {limit:.0f} s") from None
            if "crash" in outs[-1]:
                raise RuntimeError(f"a load worker crashed: {outs[-1]['crash']}")
        if on_end:
            on_end()
    finally:
        for p in started:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        for q in (ready, results):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()
    return _combine(outs)


def _combine(outs: list[dict[str, Any]]) -> LoadResult:
    result = LoadResult()
    for out in outs:
        result.events += out["events"]
        result.requests += out["requests"]
        result.errors += out["errors"]
        result.latencies.extend(out["latencies"])
        result.client_cpu += out["cpu"]
        result.first_error = result.first_error or out["first_error"]
    result.seconds = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return result

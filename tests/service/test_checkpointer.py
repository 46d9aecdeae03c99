"""The checkpointer signs busy logs from the writer right after a commit, idle ones from its own
thread, never twice within an interval, and never deadlocks against another signer."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from trailkeep.api.services import Services
from trailkeep.settings import Settings
from trailkeep.storage.base import StoredCheckpoint

INTERVAL = 0.2
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class Recorder:
    """Wraps ``store.add_checkpoint``: when each checkpoint was stored, and by which thread."""

    def __init__(self, services: Services) -> None:
        self.added: list[tuple[float, int, str]] = []
        inner = services.store.add_checkpoint

        def add_checkpoint(checkpoint: StoredCheckpoint) -> bool:
            called = time.monotonic()
            stored = inner(checkpoint)
            if stored:
                self.added.append((called, checkpoint.size, threading.current_thread().name))
            return stored

        services.store.add_checkpoint = add_checkpoint  # type: ignore[method-assign]


@pytest.fixture
def busy(settings: Settings) -> Iterator[tuple[Services, Recorder]]:
    services = Services.build(settings.model_copy(update={"checkpoint_interval": INTERVAL}))
    services.tenants.create_tenant("acme")
    recorder = Recorder(services)
    services.checkpointer.start()
    yield services, recorder
    services.close()


def _append(services: Services, n: int = 1) -> int:
    events = [services.events.prepare({"action": "login"}) for _ in range(n)]
    return services.store.append("acme", events).result()[-1].event.seq


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_busy_log_is_signed_by_the_writer_right_after_a_commit(
    busy: tuple[Services, Recorder],
) -> None:
    services, recorder = busy
    acked: list[tuple[float, int]] = []
    stop_at = time.monotonic() + 6 * INTERVAL
    while time.monotonic() < stop_at:
        seq = _append(services)
        acked.append((time.monotonic(), seq))
        time.sleep(0.01)
    time.sleep(2 * INTERVAL)  # the tail is signed by the checkpointer's own thread

    signers = {name for _, _, name in recorder.added[:-1]}
    assert signers == {f"{services.store.dialect}-writer"}
    assert len(recorder.added) >= 4
    times = [t for t, _, _ in recorder.added]
    # Never two within an interval, though a commit lands every ~10 ms: less the jitter between
    # the due check and the store, which a loaded machine stretches (0.11 s seen with CI beside).
    assert min(b - a for a, b in itertools.pairwise(times)) >= INTERVAL * 0.4
    # Every acknowledged event is covered within about one interval (plus a commit).
    for ack, seq in acked[:-20]:
        covered = next(t for t, size, _ in recorder.added if size > seq)
        assert covered - ack <= INTERVAL + 0.25, (seq, covered - ack)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_idle_log_is_signed_by_the_checkpointer_thread(
    busy: tuple[Services, Recorder],
) -> None:
    services, recorder = busy
    seq = _append(services, 5)  # committed before the first interval is due: not signed yet
    assert recorder.added == []
    deadline = time.monotonic() + 5
    while not recorder.added and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(size, name) for _, size, name in recorder.added] == [(seq + 1, "checkpointer")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_signing_from_other_threads_never_deadlocks_the_writer(
    settings: Settings,
) -> None:
    services = Services.build(settings.model_copy(update={"checkpoint_interval": 0.001}))
    services.tenants.create_tenant("acme")
    services.checkpointer.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            writes = [pool.submit(_append, services) for _ in range(300)]
            signs = [pool.submit(services.log.sign_pending) for _ in range(100)]
            for future in writes + signs:
                future.result(timeout=30)
        services.log.sign_pending()
        checkpoint = services.store.latest_checkpoint("acme")
        assert checkpoint is not None
        assert checkpoint.size == 300
    finally:
        services.close()

"""Random bytes for ids and salts: the kernel's, each handed out once, few system calls."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from trailkeep.model import entropy
from trailkeep.model.entropy import RESERVOIR, random_bytes
from trailkeep.model.ids import new_event_id, new_event_ids
from trailkeep.service.events import Limits, prepare_all


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real: Callable[[int], bytes] = os.urandom

    def urandom(size: int) -> bytes:
        calls.append(size)
        return real(size)

    monkeypatch.setattr(os, "urandom", urandom)
    monkeypatch.setattr(entropy, "_reservoir", entropy._Reservoir())
    return calls


def test_single_events_share_system_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """One event per request (``prepare_all`` of one, as the route does) needs an id and
    salts: drawn from the reservoir, so 200 such events make one ``getrandom()`` (and one
    GIL release), not two each."""
    calls = _counting(monkeypatch)
    events = [e for i in range(200)
              for e in prepare_all([{"action": "a.b", "actor": {"id": f"u{i}"}}], Limits(),
                                   batch=False)]  # fmt: skip
    ids = [new_event_id() for _ in range(100)] + new_event_ids(50)
    assert len(calls) <= 2
    assert len({e.id for e in events} | set(ids)) == 350
    salts = [s for e in events for s in e.salts.values()]
    assert len(set(salts)) == len(salts)


def test_no_byte_is_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    drawn = [random_bytes(n) for n in (1, 7, RESERVOIR - 8, 16, RESERVOIR + 1, 3)]
    assert [len(d) for d in drawn] == [1, 7, RESERVOIR - 8, 16, RESERVOIR + 1, 3]
    # The 16 bytes did not fit what was left: a new reservoir, the rest of the old one unused;
    # a draw larger than the reservoir is its own system call.
    assert calls == [RESERVOIR, RESERVOIR, RESERVOIR + 1]
    assert len(set(drawn)) == len(drawn)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entropy, "_reservoir", entropy._Reservoir())
    os.register_at_fork(after_in_child=entropy._reservoir.forget)
    random_bytes(8)  # the reservoir is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        os.close(read)
        os.write(write, random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != random_bytes(32)

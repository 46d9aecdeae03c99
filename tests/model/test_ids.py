"""Event ids are ULIDs: Crockford base32, 48 bits of milliseconds, then 80 random bits."""

from __future__ import annotations

import re

import pytest

from trailkeep.model import ids

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference_ulid(millis: int, rand: int) -> str:
    value = millis << 80 | rand
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


class TestEventId:
    """``new_event_id`` matches a bit-by-bit ULID encoding and sorts by time."""

    def test_layout(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fixed = bytes(range(10, 20))
        monkeypatch.setattr(ids, "random_bytes", lambda n: fixed[:n])
        now_ns = 1_795_431_605_528_615_000
        expected = _reference_ulid(now_ns // 1_000_000, int.from_bytes(fixed, "big"))
        assert ids.new_event_id(now_ns) == "evt_" + expected

    def test_sorts_by_time(self) -> None:
        earlier = ids.new_event_id(1_000_000_000_000_000_000)
        later = ids.new_event_id(1_000_000_000_001_000_000)
        assert earlier < later
        assert re.fullmatch(r"evt_[0-9A-HJKMNP-TV-Z]{26}", later)

    def test_many_from_one_draw(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``new_event_ids`` lays each 10-byte slice of one draw out as ``new_event_id`` does."""
        pool = bytes(range(30))
        draws: list[int] = []
        monkeypatch.setattr(ids, "random_bytes", lambda n: draws.append(n) or pool[:n])
        now_ns = 1_795_431_605_528_615_000
        millis = now_ns // 1_000_000
        expected = [
            "evt_" + _reference_ulid(millis, int.from_bytes(pool[i : i + 10], "big"))
            for i in (0, 10, 20)
        ]
        assert ids.new_event_ids(3, now_ns) == expected
        assert draws == [30]
        assert ids.new_event_ids(0) == []

    def test_many_are_distinct(self) -> None:
        batch = ids.new_event_ids(500)
        assert len(set(batch)) == 500
        assert all(re.fullmatch(r"evt_[0-9A-HJKMNP-TV-Z]{26}", i) for i in batch)

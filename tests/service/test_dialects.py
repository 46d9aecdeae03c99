"""The dialects' reader: offset windows, totals, predicates, and the scan budget."""

from __future__ import annotations

import pytest

from trailkeep.api.services import Services
from trailkeep.model.event import StoredEvent
from trailkeep.query.filters import Sort
from trailkeep.service.dialects import DialectQuery, DialectReader

N = 30


@pytest.fixture
def seeded(services: Services) -> list[StoredEvent]:
    services.tenants.create_tenant("acme")
    events = [
        services.events.prepare(
            {
                "timestamp": f"2026-01-01T00:00:{i:02d}Z",
                "action": "even" if i % 2 == 0 else "odd",
                "metadata": {"n": i},
            }
        )
        for i in range(N)
    ]
    return [a.event for a in services.store.append("acme", events).result()]


def n_of(event: StoredEvent) -> int:
    value: int = event.content["metadata"]["n"]
    return value


class TestWindow:
    """A window is the matches at [offset, offset + limit), in the selection's order."""

    @pytest.mark.parametrize(
        ("offset", "limit", "expected"),
        [
            pytest.param(0, 3, [29, 28, 27], id="first-page"),
            pytest.param(28, 5, [1, 0], id="short-last-page"),
            pytest.param(30, 5, [], id="past-the-end"),
        ],
    )
    def test_offsets(
        self,
        services: Services,
        seeded: list[StoredEvent],
        offset: int,
        limit: int,
        expected: list[int],
    ) -> None:
        window = DialectReader(services.events).window(
            "acme", DialectQuery(), offset=offset, limit=limit, count_total=True
        )
        assert [n_of(e) for e in window.events] == expected
        assert (window.total, window.truncated) == (N, False)

    def test_pushed_filters_bounds_and_predicate(
        self, services: Services, seeded: list[StoredEvent]
    ) -> None:
        selection = DialectQuery(
            {"action": ["even"]},
            "2026-01-01T00:00:04.000000Z",
            "2026-01-01T00:00:20.000000Z",
            Sort.ASC,
            lambda e: n_of(e) % 4 == 0,
        )
        window = DialectReader(services.events).window(
            "acme", selection, offset=1, limit=2, count_total=True
        )
        assert [n_of(e) for e in window.events] == [8, 12]
        assert window.total == 4  # 4, 8, 12, 16

    def test_without_total_stops_at_the_window(
        self, services: Services, seeded: list[StoredEvent]
    ) -> None:
        window = DialectReader(services.events).window("acme", DialectQuery(), offset=2, limit=2)
        assert [n_of(e) for e in window.events] == [27, 26]
        assert window.total == 4

    def test_empty_bounds_read_nothing(self, services: Services, seeded: list[StoredEvent]) -> None:
        selection = DialectQuery(
            start="2026-01-01T00:00:05.000000Z", end="2026-01-01T00:00:05.000000Z"
        )
        window = DialectReader(services.events).window("acme", selection, offset=0, limit=5)
        assert (window.events, window.total) == ([], 0)


class TestBudget:
    """A scan examines at most its budget of events, and says when it stopped early."""

    def test_budget_cuts_the_scan(self, services: Services, seeded: list[StoredEvent]) -> None:
        reader = DialectReader(services.events, budget=10)
        window = reader.window(
            "acme",
            DialectQuery(where=lambda e: n_of(e) % 3 == 0),
            offset=0,
            limit=100,
            count_total=True,
        )
        assert [n_of(e) for e in window.events] == [27, 24, 21]  # 29..20 examined
        assert (window.total, window.truncated) == (3, True)

    def test_budget_is_not_hit_by_a_short_walk(
        self, services: Services, seeded: list[StoredEvent]
    ) -> None:
        scan = DialectReader(services.events, budget=N).scan("acme", DialectQuery())
        assert len(list(scan)) == N
        assert scan.truncated is False

"""Time input (DESIGN §6): every accepted form, every refusal, and the one form we emit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.model.strategies import aware_datetimes, time_texts

from trailkeep.errors import TimeParseError
from trailkeep.model.timeparse import ACCEPTED_FORMS, format_time, parse_time, utc_text, utcnow

NOW = datetime(2026, 11, 23, 10, 0, 5, 123456, tzinfo=UTC)
TODAY = datetime(2026, 11, 23, tzinfo=UTC)


def _utc(year: int, month: int, day: int, *clock: int) -> datetime:
    hour, minute, second, micro = (*clock, 0, 0, 0, 0)[:4]
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


class TestParseTimeAbsolute:
    """RFC 3339 with any offset, dates, naive date-times and Unix epochs read as instants."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("2026-11-23T10:00:05Z", _utc(2026, 11, 23, 10, 0, 5), id="z"),
            pytest.param("2026-11-23t10:00:05z", _utc(2026, 11, 23, 10, 0, 5), id="lowercase-t-z"),
            pytest.param(
                "2026-11-23 10:00:05Z", _utc(2026, 11, 23, 10, 0, 5), id="space-separator"
            ),
            pytest.param(
                "2026-11-23T10:00:05.123456Z", _utc(2026, 11, 23, 10, 0, 5, 123456), id="micros"
            ),
            pytest.param(
                "2026-11-23T10:00:05.1Z", _utc(2026, 11, 23, 10, 0, 5, 100000), id="1-digit"
            ),
            pytest.param(
                "2026-11-23T10:00:05.123456789Z",
                _utc(2026, 11, 23, 10, 0, 5, 123456),
                id="nanos-truncated",
            ),
            pytest.param(
                "2026-11-23T10:00:05.999999999Z",
                _utc(2026, 11, 23, 10, 0, 5, 999999),
                id="truncated-not-rounded",
            ),
            pytest.param(
                "2026-11-23T10:00:05,5Z", _utc(2026, 11, 23, 10, 0, 5, 500000), id="comma"
            ),
            pytest.param(
                "2026-11-23T12:00:05+02:00", _utc(2026, 11, 23, 10, 0, 5), id="plus-hh-mm"
            ),
            pytest.param(
                "2026-11-23T05:00:05-05:00", _utc(2026, 11, 23, 10, 0, 5), id="minus-hh-mm"
            ),
            pytest.param("2026-11-23T15:30:05+0530", _utc(2026, 11, 23, 10, 0, 5), id="plus-hhmm"),
            pytest.param("2026-11-23T12:00:05+02", _utc(2026, 11, 23, 10, 0, 5), id="plus-hh"),
            pytest.param(
                "2026-11-23T10:00:05-00:00", _utc(2026, 11, 23, 10, 0, 5), id="minus-zero"
            ),
            pytest.param(
                "2026-11-23T12:00:05 02:00",
                _utc(2026, 11, 23, 10, 0, 5),
                id="plus-decoded-as-space",
            ),
            pytest.param("2026-11-23 10:00:05 UTC", _utc(2026, 11, 23, 10, 0, 5), id="utc-suffix"),
            pytest.param("2026-11-23T10:00:05", _utc(2026, 11, 23, 10, 0, 5), id="naive-is-utc"),
            pytest.param("2026-11-23T10:00", _utc(2026, 11, 23, 10, 0), id="no-seconds"),
            pytest.param("2026-11-23", _utc(2026, 11, 23), id="date-only"),
            pytest.param("2026-3-1T1:2:3Z", _utc(2026, 3, 1, 1, 2, 3), id="pangea-short-parts"),
            pytest.param(
                "2026-11-23T23:59:60Z", _utc(2026, 11, 23, 23, 59, 59, 999999), id="leap-second"
            ),
            pytest.param("2024-02-29", _utc(2024, 2, 29), id="leap-day"),
            pytest.param("0001-01-01T00:00:00Z", _utc(1, 1, 1), id="year-1"),
            pytest.param(
                "9999-12-31T23:59:59.999999Z",
                _utc(9999, 12, 31, 23, 59, 59, 999999),
                id="year-9999",
            ),
            pytest.param("  2026-11-23T10:00:05Z\n", _utc(2026, 11, 23, 10, 0, 5), id="stripped"),
            pytest.param("1763892000", _utc(2025, 11, 23, 10, 0), id="epoch-seconds"),
            pytest.param(
                "1763892000.25", _utc(2025, 11, 23, 10, 0, 0, 250000), id="epoch-fraction"
            ),
            pytest.param("1763892000123", _utc(2025, 11, 23, 10, 0, 0, 123000), id="epoch-millis"),
            pytest.param("100000000", _utc(1973, 3, 3, 9, 46, 40), id="epoch-9-digits"),
        ],
    )
    def test_accepts(self, text: str, expected: datetime) -> None:
        got = parse_time(text, now=NOW)
        assert got == expected
        assert got is not None
        assert got.tzinfo is UTC


class TestParseTimeRelative:
    """now/today anchors with offsets, and bare durations meaning that long ago."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("now", NOW, id="now"),
            pytest.param("NOW", NOW, id="now-upper"),
            pytest.param("today", TODAY, id="today"),
            pytest.param("yesterday", TODAY - timedelta(days=1), id="yesterday"),
            pytest.param("tomorrow", TODAY + timedelta(days=1), id="tomorrow"),
            pytest.param("now-1day", NOW - timedelta(days=1), id="agilicus-now-1day"),
            pytest.param("now-15min", NOW - timedelta(minutes=15), id="now-15min"),
            pytest.param("now+15min", NOW + timedelta(minutes=15), id="now-plus-15min"),
            pytest.param("now-2h", NOW - timedelta(hours=2), id="now-2h"),
            pytest.param("now - 2 hours", NOW - timedelta(hours=2), id="spaces"),
            pytest.param("Now-3Days", NOW - timedelta(days=3), id="mixed-case"),
            pytest.param("now-30s", NOW - timedelta(seconds=30), id="seconds"),
            pytest.param("now-1w", NOW - timedelta(weeks=1), id="week"),
            pytest.param("now-1d+2h", NOW - timedelta(days=1) + timedelta(hours=2), id="chained"),
            pytest.param("today-1d", TODAY - timedelta(days=1), id="today-minus"),
            pytest.param("today+9h", TODAY + timedelta(hours=9), id="today-plus"),
            pytest.param("now-1mo", _utc(2026, 10, 23, 10, 0, 5, 123456), id="month-calendar"),
            pytest.param("now-1y", _utc(2025, 11, 23, 10, 0, 5, 123456), id="year-calendar"),
            pytest.param("24h", NOW - timedelta(hours=24), id="24h"),
            pytest.param("7d", NOW - timedelta(days=7), id="7d"),
            pytest.param("30d", NOW - timedelta(days=30), id="30d"),
            pytest.param("21d", NOW - timedelta(days=21), id="pangea-21d"),
            pytest.param("0d", NOW, id="pangea-0d"),
            pytest.param("15min", NOW - timedelta(minutes=15), id="15min"),
            pytest.param("30m", NOW - timedelta(minutes=30), id="m-is-minutes"),
            pytest.param("1 week", NOW - timedelta(weeks=1), id="1-week"),
            pytest.param("2 hours ago", NOW - timedelta(hours=2), id="ago"),
            pytest.param("-15m", NOW - timedelta(minutes=15), id="leading-minus"),
            pytest.param("1h30m", NOW - timedelta(hours=1, minutes=30), id="compound"),
            pytest.param("1mo", _utc(2026, 10, 23, 10, 0, 5, 123456), id="pangea-mo"),
            pytest.param("2y", _utc(2024, 11, 23, 10, 0, 5, 123456), id="pangea-y"),
        ]
        + [
            pytest.param(f"5{unit}", NOW - 5 * step, id=f"pangea-{unit}")
            for unit, step in [
                ("d", timedelta(days=1)),
                ("da", timedelta(days=1)),
                ("day", timedelta(days=1)),
                ("days", timedelta(days=1)),
                ("h", timedelta(hours=1)),
                ("hour", timedelta(hours=1)),
                ("hr", timedelta(hours=1)),
                ("hrs", timedelta(hours=1)),
                ("hours", timedelta(hours=1)),
                ("mi", timedelta(minutes=1)),
                ("min", timedelta(minutes=1)),
                ("mins", timedelta(minutes=1)),
                ("minute", timedelta(minutes=1)),
                ("minutes", timedelta(minutes=1)),
                ("s", timedelta(seconds=1)),
                ("sec", timedelta(seconds=1)),
                ("secs", timedelta(seconds=1)),
                ("second", timedelta(seconds=1)),
                ("seconds", timedelta(seconds=1)),
                ("w", timedelta(weeks=1)),
                ("week", timedelta(weeks=1)),
                ("weeks", timedelta(weeks=1)),
            ]
        ]
        + [
            pytest.param(f"5{unit}", _utc(2026, 6, 23, 10, 0, 5, 123456), id=f"pangea-{unit}")
            for unit in ("mo", "mon", "month", "months")
        ]
        + [
            pytest.param(f"5{unit}", _utc(2021, 11, 23, 10, 0, 5, 123456), id=f"pangea-{unit}")
            for unit in ("y", "year", "years")
        ],
    )
    def test_accepts(self, text: str, expected: datetime) -> None:
        assert parse_time(text, now=NOW) == expected

    @pytest.mark.parametrize(
        ("now", "text", "expected"),
        [
            pytest.param(_utc(2026, 3, 31), "1mo", _utc(2026, 2, 28), id="clamps-to-february"),
            pytest.param(_utc(2024, 2, 29), "1y", _utc(2023, 2, 28), id="leap-day-minus-year"),
            pytest.param(_utc(2026, 1, 15), "now-2mo", _utc(2025, 11, 15), id="across-new-year"),
            pytest.param(_utc(2026, 12, 31), "now+1mo", _utc(2027, 1, 31), id="forward-month"),
        ],
    )
    def test_calendar_units(self, now: datetime, text: str, expected: datetime) -> None:
        assert parse_time(text, now=now) == expected

    def test_now_in_another_offset_is_read_in_utc(self) -> None:
        local = datetime(2026, 11, 23, 1, 0, tzinfo=timezone(timedelta(hours=5)))
        assert parse_time("today", now=local) == _utc(2026, 11, 22)

    def test_default_now_is_the_clock(self) -> None:
        before = utcnow()
        got = parse_time("now")
        assert got is not None
        assert before <= got <= utcnow()

    def test_naive_now_is_a_programming_error(self) -> None:
        with pytest.raises(TypeError, match="aware"):
            parse_time("now", now=datetime(2026, 11, 23))  # noqa: DTZ001


class TestParseTimeEmpty:
    """The empty string, or only whitespace, means no bound."""

    @pytest.mark.parametrize("text", [pytest.param(t, id=repr(t)) for t in ["", " ", "\t\n "]])
    def test_none(self, text: str) -> None:
        assert parse_time(text, now=NOW) is None


class TestParseTimeRejects:
    """Anything else is a TimeParseError naming the parameter and the accepted forms."""

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("invalid-format", id="kubiya-invalid-format"),
            pytest.param("yesterday-ish", id="anchor-with-junk"),
            pytest.param("nowhere", id="now-prefix"),
            pytest.param("now-1", id="offset-without-unit"),
            pytest.param("now*2h", id="bad-operator"),
            pytest.param("now-1x", id="unknown-unit"),
            pytest.param("7", id="number-without-unit"),
            pytest.param("1ms", id="milliseconds-unit"),
            pytest.param("+7d", id="plus-duration"),
            pytest.param("ago", id="ago-alone"),
            pytest.param("-", id="minus-alone"),
            pytest.param("7d later", id="later"),
            pytest.param("20261123", id="compact-date"),
            pytest.param("0", id="zero"),
            pytest.param("123456789012345", id="15-digits"),
            pytest.param("2026-11-23T", id="dangling-t"),
            pytest.param("2026-11-23T10", id="hour-only"),
            pytest.param("2026-11-23T10:00:05.", id="empty-fraction"),
            pytest.param("2026-11-23T10:00:05.1234567890Z", id="10-fraction-digits"),
            pytest.param("2026-11-23Z", id="date-with-z"),
            pytest.param("2026-11-23T10:00:05+24:00", id="offset-24h"),
            pytest.param("2026-11-23T10:00:05+02:60", id="offset-60-minutes"),
            pytest.param("2026-11-23T10:00:05 02", id="space-offset-needs-minutes"),
            pytest.param("2026-11-23T10:00:05EST", id="named-zone"),
            pytest.param("2026-13-01", id="month-13"),
            pytest.param("2026-02-29", id="not-a-leap-year"),
            pytest.param("2026-11-31", id="november-31"),
            pytest.param("2026-11-23T24:00:00Z", id="hour-24"),
            pytest.param("2026-11-23T10:61:00Z", id="minute-61"),
            pytest.param("2026-11-23T10:00:61Z", id="second-61"),
            pytest.param("0000-01-01", id="year-0"),
            pytest.param("10000-01-01", id="year-10000"),
            pytest.param("-2026-11-23", id="negative-year"),
            pytest.param("0001-01-01T00:00:00+01:00", id="before-year-1-in-utc"),
            pytest.param("9999-12-31T23:00:00-01:00", id="after-year-9999-in-utc"),
            pytest.param("now-99999999999d", id="overflow-days"),
            pytest.param("now+999999999999y", id="overflow-years"),
            pytest.param("99999999999mo", id="overflow-months"),
            pytest.param("\u0661\u0669\u0667\u0660-01-01", id="arabic-indic-digits"),
            pytest.param("\u0663d", id="arabic-indic-duration"),
            pytest.param("Nov 23 2026", id="prose-date"),
            pytest.param("2026/11/23", id="slashes"),
        ],
    )
    def test_rejects(self, text: str) -> None:
        with pytest.raises(TimeParseError) as info:
            parse_time(text, param="dt_from", now=NOW)
        message = str(info.value)
        assert message.startswith("dt_from: ")
        assert ACCEPTED_FORMS in message
        assert info.value.code == "INVALID_TIME"

    def test_long_input_is_shortened_in_the_message(self) -> None:
        with pytest.raises(TimeParseError) as info:
            parse_time("x" * 10_000)
        assert len(str(info.value)) < 600

    @given(time_texts)
    def test_any_text_parses_or_raises_time_parse_error(self, text: str) -> None:
        try:
            got = parse_time(text, now=NOW)
        except TimeParseError:
            return
        assert got is None or got.tzinfo is UTC


class TestFormatTime:
    """format_time writes fixed-width UTC with six fraction digits and Z, and parses back."""

    @pytest.mark.parametrize(
        ("dt", "expected"),
        [
            pytest.param(
                _utc(2026, 11, 23, 10, 0, 5), "2026-11-23T10:00:05.000000Z", id="no-micros"
            ),
            pytest.param(
                _utc(2026, 11, 23, 10, 0, 5, 123), "2026-11-23T10:00:05.000123Z", id="padded-micros"
            ),
            pytest.param(
                datetime(2026, 11, 23, 12, 0, 5, tzinfo=timezone(timedelta(hours=2))),
                "2026-11-23T10:00:05.000000Z",
                id="offset-converted",
            ),
            pytest.param(_utc(1, 1, 1), "0001-01-01T00:00:00.000000Z", id="year-1-padded"),
            pytest.param(
                _utc(9999, 12, 31, 23, 59, 59, 999999),
                "9999-12-31T23:59:59.999999Z",
                id="year-9999",
            ),
        ],
    )
    def test_format(self, dt: datetime, expected: str) -> None:
        assert format_time(dt) == expected

    def test_naive_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            format_time(datetime(2026, 11, 23))  # noqa: DTZ001

    def test_not_representable_in_utc_is_refused(self) -> None:
        early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
        with pytest.raises(ValueError, match="outside years"):
            format_time(early)

    @given(aware_datetimes)
    def test_round_trip(self, dt: datetime) -> None:
        text = format_time(dt)
        assert len(text) == 27
        assert parse_time(text) == dt

    @given(aware_datetimes, aware_datetimes)
    def test_string_order_is_time_order(self, a: datetime, b: datetime) -> None:
        assert (format_time(a) < format_time(b)) == (a < b)


class TestUtcnow:
    """utcnow is the current time, aware and in UTC."""

    def test_aware_utc(self) -> None:
        now = utcnow()
        assert now.tzinfo is UTC
        assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def _near(base: datetime, swap: tuple[int, str] | None, fraction: str, end: str) -> str:
    """``base`` in the ``...Z`` form, one field maybe swapped for an edge value."""
    fields = [f"{base.year:04d}", f"{base.month:02d}", f"{base.day:02d}", "T"]
    fields += [f"{base.hour:02d}", f"{base.minute:02d}", f"{base.second:02d}"]
    if swap is not None:
        fields[swap[0]] = swap[1]
    y, mo, d, t, h, mi, sec = fields
    return f"{y}-{mo}-{d}{t}{h}:{mi}:{sec}{fraction}{end}"


_edges = st.sampled_from(
    [
        *[(0, "0000"), (1, "00"), (1, "13"), (1, "1"), (2, "00"), (2, "29"), (2, "30")],
        *[(2, "31"), (2, "32"), (3, "t"), (3, " "), (4, "24"), (4, "9"), (5, "60"), (6, "60")],
    ]
)
#: The ``YYYY-MM-DDTHH:MM:SS[.F]Z`` form, often with one field at an edge (a day the month
#: lacks, a leap second, hour 24, lower case, 10 fraction digits, another ending).
_near_utc_z = st.builds(
    _near,
    st.datetimes(),
    st.none() | _edges,
    st.just("") | st.text(st.sampled_from("0123456789"), max_size=10).map(lambda f: "." + f),
    st.sampled_from(["Z", "Z", "Z", "z", "", "+00:00", " "]),
)


class TestUtcText:
    """The fast path for the common form gives what ``parse_time`` and ``format_time`` give,
    or declines; it never accepts text ``parse_time`` refuses."""

    @settings(max_examples=500)
    @given(_near_utc_z | _near_utc_z | time_texts | aware_datetimes.map(format_time))
    def test_same_as_parse_then_format(self, text: str) -> None:
        fast = utc_text(text)
        if fast is None:
            return
        assert fast == format_time(parse_time(text))  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("2026-11-23T10:00:05Z", "2026-11-23T10:00:05.000000Z", id="no-fraction"),
            pytest.param("2026-11-23T10:00:05.1Z", "2026-11-23T10:00:05.100000Z", id="one-digit"),
            pytest.param(
                "2024-02-29T23:59:59.123456789Z", "2024-02-29T23:59:59.123456Z", id="nine-digits"
            ),
            pytest.param("2026-02-29T10:00:05Z", None, id="no-such-day"),
            pytest.param("2026-11-23T10:00:60Z", None, id="leap-second"),
            pytest.param("2026-11-23t10:00:05z", None, id="lower-case"),
            pytest.param("2026-11-23T10:00:05+00:00", None, id="offset"),
            pytest.param("0000-01-01T00:00:00Z", None, id="year-zero"),
            pytest.param(" 2026-11-23T10:00:05Z", None, id="space"),
        ],
    )
    def test_cases(self, text: str, expected: str | None) -> None:
        assert utc_text(text) == expected

"""Reading the times people and vendor clients send (DESIGN §6), and writing the one form we emit.

Every API, dialect and the CLI reads times through :func:`parse_time`, so a form accepted in one
place is accepted everywhere. Input is stripped and case-insensitive. Accepted:

* **Absolute**: ``YYYY-MM-DD``, then optionally ``T``, ``t`` or spaces and ``HH:MM[:SS[.F]]``
  (month, day and time parts may have one digit, as Pangea's pattern allows), with 0 to 9
  fraction digits (``.`` or ``,``; digits past microseconds are truncated, not rounded). An
  offset may follow the time: ``Z``, ``UTC``, ``GMT``, ``±HH``, ``±HH:MM`` or ``±HHMM``; a space
  in place of ``+`` before ``HH:MM`` is read as ``+``, because an unencoded ``+`` in a query
  string arrives as a space. No offset (including a bare date) means UTC. A leap second
  (``:60``) is read as ``:59.999999`` so it stays inside its minute.
* **Unix epoch**: 9 to 11 digits are seconds (``1763892000``, optionally ``.F``), 12 to 14
  digits are milliseconds (``1763892000123``). Shorter digit runs such as ``20261123`` or ``0``
  are refused rather than guessed at.
* **Anchors**: ``now``, ``today`` (00:00 UTC), ``yesterday`` and ``tomorrow`` (00:00 UTC), each
  optionally followed by offsets: ``now-1day``, ``now+15min``, ``today - 2h``, ``now-1d+2h``.
* **Durations ago**: ``24h``, ``7d``, ``1 week``, ``1h30m``, ``2 hours ago``, ``-15m`` all mean
  that long before now (Pangea's ``start="7d"``, ``end="0d"``).

Units (any case, for offsets and durations): ``s sec secs second seconds``, ``m mi min mins
minute minutes``, ``h hr hrs hour hours``, ``d da day days``, ``w wk wks week weeks``, ``mo mon
mons month months``, ``y yr yrs year years`` — Pangea's spellings plus ``m`` for minutes (so
``m`` is never a month: write ``mo``). Months and years move the calendar date and clamp the
day (``2026-03-31`` minus ``1mo`` is ``2026-02-28``); the other units are fixed lengths.

The empty (or all-whitespace) string is "no bound" and returns ``None``. Anything else, or a
result outside years 1..9999, raises :class:`~trailkeep.errors.TimeParseError` naming the
parameter and listing these forms.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from trailkeep.errors import TimeParseError

__all__ = ["ACCEPTED_FORMS", "format_time", "parse_time", "utc_text", "utcnow"]

#: One line for error messages and API docs.
ACCEPTED_FORMS: Final = (
    "RFC 3339 (2026-11-23T10:00:05Z, 2026-11-23T12:00:05.123+02:00), a date (2026-11-23) or"
    " naive date-time (taken as UTC), Unix seconds or milliseconds, now, today, yesterday,"
    " now-1day, now+15min, or a duration ago (24h, 7d, 30m, 1 week); empty means no bound"
)

_ABSOLUTE: Final = re.compile(
    r"""(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})
    (?:(?:t|\x20+)
       (?P<hour>\d{1,2}):(?P<minute>\d{1,2})
       (?::(?P<second>\d{1,2})(?:[.,](?P<fraction>\d{1,9}))?)?
       (?:\x20*(?P<utc>z|utc|gmt)
         |\x20*(?P<sign>[-+])(?P<off_h>\d{1,2})(?::?(?P<off_m>\d{2}))?
         |\x20(?P<space_h>\d{2}):(?P<space_m>\d{2})   # "+HH:MM" after URL decoding
       )?
    )?""",
    re.ASCII | re.VERBOSE,
)

_EPOCH: Final = re.compile(
    r"(?P<seconds>\d{9,11})(?:\.(?P<fraction>\d{1,9}))?|(?P<millis>\d{12,14})", re.ASCII
)
_ANCHOR: Final = re.compile(r"(?P<anchor>now|today|yesterday|tomorrow)(?P<rest>.*)", re.ASCII)
# Alternatives are tried in order, so each longer spelling comes before its prefixes (and the
# months before the minutes): ``1mo`` must never read as one minute followed by an ``o``.
_UNIT: Final = (
    r"(?P<unit>seconds?|secs?|s|months?|mons?|mo|minutes?|mins?|mi|m|hours?|hrs?|h"
    r"|days?|da|d|weeks?|wks?|w|years?|yrs?|y)"
)
_TERM: Final = re.compile(r"\x20*(?P<amount>\d{1,12})\x20*" + _UNIT, re.ASCII)
_SIGNED_TERM: Final = re.compile(r"\x20*(?P<sign>[-+])" + _TERM.pattern, re.ASCII)
_AGO: Final = re.compile(r"(?:-\x20*)?(?P<terms>.+?)(?:\x20+ago)?", re.ASCII)

_FIXED_UNITS: Final = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: The form nearly every client sends (what ``toISOString()``, Go and this SDK write).
_UTC_Z: Final = re.compile(
    r"(\d{4}-(\d\d)-(\d\d)T([01]\d|2[0-3]):[0-5]\d:[0-5]\d)(?:\.(\d{1,9}))?Z", re.ASCII
)
_SPACES: Final = re.compile(r"\s+")
_ECHO_LIMIT: Final = 60


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the one clock the model reads)."""
    return datetime.now(UTC)


def format_time(dt: datetime) -> str:
    """Write ``dt`` in the fixed-width form every emitted timestamp uses (DESIGN §2).

    ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` always has six fraction digits and ``Z``, so string order
    equals time order (a vendor client relies on it) and Pangea's verifier re-renders it
    byte for byte.

    Raises:
        ValueError: ``dt`` is naive (it would be ambiguous), or is not representable in UTC.
    """
    if dt.utcoffset() is None:
        raise ValueError(f"format_time needs an aware datetime, got naive {dt!r}")
    try:
        u = dt.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{dt!r} is outside years 1..9999 in UTC") from exc
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def utc_text(text: str) -> str | None:
    """``format_time(parse_time(text))`` for the one form most clients send, without datetimes.

    ``YYYY-MM-DDTHH:MM:SS[.F]Z`` exactly as written (upper-case ``T`` and ``Z``, two-digit
    fields, 1 to 9 fraction digits, no spaces) is rewritten to the fixed-width form as text;
    ingest reads one per event, and going through ``datetime`` costs several times more.

    Returns:
        The fixed-width form, or ``None`` for any other text, including a leap second, year
        0000 or a day the month does not have: :func:`parse_time` then reads (or refuses) it.
    """
    m = _UTC_Z.fullmatch(text)
    if m is None:
        return None
    whole, month, day, _hour, fraction = m.groups()
    if not ("01" <= month <= "12" and "01" <= day <= "31") or whole.startswith("0000"):
        return None
    if day > "28" and int(day) > monthrange(int(whole[:4]), int(month))[1]:
        return None
    micros = "000000" if fraction is None else fraction[:6].ljust(6, "0")
    return f"{whole}.{micros}Z"


def parse_time(text: str, *, param: str = "time", now: datetime | None = None) -> datetime | None:
    """Read one time bound in any accepted form (see the module docstring).

    Args:
        text: what the caller sent.
        param: the parameter's name as the caller knows it (``start``, ``dt_from``...), so the
            error says which input to fix.
        now: the reference for relative forms; defaults to :func:`utcnow`. Must be aware.

    Returns:
        An aware UTC datetime, or ``None`` for the empty string ("no bound").

    Raises:
        TimeParseError: ``text`` is in no accepted form, names a day that does not exist, or
            lands outside years 1..9999.
        TypeError: ``now`` is naive (a bug in the caller, not bad input).
    """
    cleaned = _SPACES.sub(" ", text.strip()).lower()
    if not cleaned:
        return None
    reference = _reference_now(now)
    try:
        parsed = _parse(cleaned, reference)
    except (OverflowError, ValueError) as exc:  # the range checks of datetime and timedelta
        raise _error(param, text, "is not a valid date, or is outside years 1..9999") from exc
    if parsed is None:
        raise _error(param, text, "is not a time we can read")
    return parsed


def _error(param: str, text: str, problem: str) -> TimeParseError:
    shown = text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "..."
    return TimeParseError(f"{param}: {shown!r} {problem}; accepted: {ACCEPTED_FORMS}")


def _reference_now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.utcoffset() is None:
        raise TypeError(f"parse_time(now=...) must be an aware datetime, got naive {now!r}")
    return now.astimezone(UTC)


def _parse(text: str, now: datetime) -> datetime | None:
    """The time ``text`` (stripped, lowercase) names, or ``None`` when it matches no form."""
    if (m := _EPOCH.fullmatch(text)) is not None:
        return _epoch(m)
    if (m := _ABSOLUTE.fullmatch(text)) is not None:
        return _absolute(m)
    if (m := _ANCHOR.fullmatch(text)) is not None:
        return _shift_by_terms(_anchor(m["anchor"], now), m["rest"], signed=True)
    if (m := _AGO.fullmatch(text)) is not None:
        return _shift_by_terms(now, m["terms"], signed=False)
    return None


def _absolute(m: re.Match[str]) -> datetime | None:
    second = int(m["second"] or 0)
    microsecond = _micros(m["fraction"])
    if second == 60:  # a leap second: the last instant of its minute
        second, microsecond = 59, 999_999
    if m["sign"] is not None:
        tz = _offset(m["sign"], int(m["off_h"]), int(m["off_m"] or 0))
    elif m["space_h"] is not None:
        tz = _offset("+", int(m["space_h"]), int(m["space_m"]))
    else:
        tz = UTC
    if tz is None:
        return None
    hour, minute = int(m["hour"] or 0), int(m["minute"] or 0)
    local = datetime(
        int(m["year"]), int(m["month"]), int(m["day"]), hour, minute, second, microsecond, tz
    )
    return local.astimezone(UTC)


def _offset(sign: str, hours: int, minutes: int) -> timezone | None:
    if hours > 23 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta)


def _micros(fraction: str | None) -> int:
    """Microseconds of a decimal fraction, truncating digits past the sixth."""
    return int((fraction or "")[:6].ljust(6, "0"))


def _epoch(m: re.Match[str]) -> datetime:
    if m["millis"] is not None:
        return _UNIX_EPOCH + timedelta(milliseconds=int(m["millis"]))
    return _UNIX_EPOCH + timedelta(seconds=int(m["seconds"]), microseconds=_micros(m["fraction"]))


def _anchor(name: str, now: datetime) -> datetime:
    if name == "now":
        return now
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if name == "today":
        return midnight
    return midnight + timedelta(days=-1 if name == "yesterday" else 1)


def _shift_by_terms(base: datetime, terms: str, *, signed: bool) -> datetime | None:
    """``base`` moved by every term of ``terms`` in order, or ``None`` if one does not read.

    With ``signed`` each term carries its own ``+``/``-`` (``now-1d+2h``); without, ``terms``
    is a duration (``1h30m``) counted back from ``base``.
    """
    pattern = _SIGNED_TERM if signed else _TERM
    position, result = 0, base
    while position < len(terms):
        term = pattern.match(terms, position)
        if term is None:
            return None
        amount = int(term["amount"])
        forward = signed and term["sign"] == "+"
        result = _shift(result, amount if forward else -amount, term["unit"])
        position = term.end()
    return result


def _shift(dt: datetime, amount: int, unit: str) -> datetime:
    """``dt`` moved by ``amount`` of ``unit``; calendar units clamp the day of the month."""
    if unit.startswith("mo"):
        months = amount
    elif unit.startswith("y"):
        months = 12 * amount
    else:
        return dt + amount * _FIXED_UNITS[unit[0]]
    year, month0 = divmod(dt.year * 12 + dt.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise OverflowError(f"year {year} is out of range")
    day = min(dt.day, monthrange(year, month0 + 1)[1])
    return dt.replace(year=year, month=month0 + 1, day=day)

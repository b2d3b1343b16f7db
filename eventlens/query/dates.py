"""Dates and calendar buckets in the project timezone (insights.md "Common rules").

Everything that compares instants uses integer microseconds since the Unix epoch (UTC), the unit of
the event table's `timestamp` column: comparing aware datetimes that share a tzinfo compares wall
times and ignores `fold`, which is wrong across a DST fall-back. Local datetimes are used only to
find calendar boundaries (midnight, week start, first of month, the hour).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from eventlens.errors import InvalidQuery

Interval = Literal["hour", "day", "week", "month"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)

_RELATIVE = re.compile(r"^-?(?P<n>\d+)?(?P<unit>[hdwmqy])(?P<pos>Start|End)?$")

# The supported calendar: every resolved date, as a local date in the timezone it is resolved in
# (the project's; values with an offset are converted to it), lies in [MIN_DATE, MAX_DATE]. The
# bounds keep every bucket, week start and end-of-day computation inside what `datetime` can
# represent (years 1..9999); events before MIN_DATE are never counted (`date_from = all` starts
# there at the earliest).
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(9999, 12, 30)
# A relative offset (`-Nd`) has at most this N: far enough back to reach MIN_DATE in any unit.
MAX_RELATIVE = 1_000_000
_UNIT_DELTA = {
    "h": lambda n: relativedelta(hours=n),
    "d": lambda n: relativedelta(days=n),
    "w": lambda n: relativedelta(weeks=n),
    "m": lambda n: relativedelta(months=n),
    "q": lambda n: relativedelta(months=3 * n),
    "y": lambda n: relativedelta(years=n),
}


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; InvalidQuery if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidQuery(f"unknown timezone {name!r}", field="timezone") from None


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    return (dt - EPOCH) // US


def from_us(us: int, tz: ZoneInfo) -> datetime:
    """The local (aware, fold-correct) datetime of an epoch-microsecond instant."""
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz)


def local(d: date, tz: ZoneInfo, hour: int = 0) -> datetime:
    """Local wall time `d` at `hour`:00 in tz (fold=0 if the wall time repeats)."""
    return datetime.combine(d, time(hour), tzinfo=tz)


@dataclass(frozen=True)
class ResolvedDate:
    """A date input resolved to a local instant; `date_only` if the input had no time of day."""

    at: datetime
    date_only: bool
    relative: bool


def resolve_date(
    value: str, tz: ZoneInfo, now: datetime, field: str, week_start: int = 0
) -> ResolvedDate:
    """Resolve an absolute ISO date/time or a relative string against `now` in tz.

    Relative (PostHog's grammar): `-Nh` is now minus N hours (to the microsecond); `-Nd`, `-Nw`,
    `-Nm`, `-Nq`, `-Ny` are now minus N units at the start of that day; a `Start`/`End` suffix
    moves to the start/end of that unit (`-1mStart` = first day of last month, `dStart` = today).
    ISO date-times without an offset are local wall times; with one they are converted.
    """
    text = value.strip()
    now_local = now.astimezone(tz)
    m = _RELATIVE.match(text)
    if m:
        digits = (m["n"] or "0").lstrip("0") or "0"
        if len(digits) > len(str(MAX_RELATIVE)) or int(digits) > MAX_RELATIVE:
            raise InvalidQuery(
                f"{field}: a relative offset is at most {MAX_RELATIVE} units "
                f"(e.g. -{MAX_RELATIVE}h), got {_short(value)}",
                field=field,
            )
        n = int(digits)
        unit, pos = m["unit"], m["pos"]
        try:
            at = now_local - _UNIT_DELTA[unit](n)
        except (OverflowError, ValueError):
            raise _out_of_range(value, field) from None
        _check_in_range(at, value, field)
        if unit == "h" and pos is None:
            return ResolvedDate(at, date_only=False, relative=True)
        if pos is None:
            return ResolvedDate(local(at.date(), tz), date_only=True, relative=True)
        if unit == "h":
            start = at.replace(minute=0, second=0, microsecond=0)
            end_excl = start + timedelta(hours=1)
        else:
            start_date = _unit_start(at.date(), unit, week_start)
            start = local(start_date, tz)
            end_excl = local(start_date + _UNIT_DELTA[unit](1), tz)
        if pos == "Start":
            return ResolvedDate(start, date_only=unit != "h", relative=True)
        return ResolvedDate(from_us(to_us(end_excl) - 1, tz), date_only=False, relative=True)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            _check_in_range(day, value, field)
            return ResolvedDate(local(day, tz), date_only=True, relative=False)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQuery(
            f"{field}: {_short(value)} is neither an ISO date/time nor a relative date like -7d",
            field=field,
        ) from None
    _check_in_range(parsed, value, field)
    try:
        at = parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)
    except (OverflowError, ValueError):
        # Converting to the project timezone left datetime's years 1..9999.
        raise _out_of_range(value, field) from None
    _check_in_range(at, value, field)
    return ResolvedDate(at, date_only=False, relative=False)


def _short(value: str) -> str:
    """The input quoted for a message, cut so a huge input does not make a huge answer."""
    return repr(value) if len(value) <= 64 else repr(value[:60]) + f"... ({len(value)} chars)"


def _out_of_range(value: str, field: str) -> InvalidQuery:
    return InvalidQuery(
        f"{field}: {_short(value)} is outside the supported dates "
        f"{MIN_DATE.isoformat()} .. {MAX_DATE.isoformat()} (in the project timezone)",
        field=field,
    )


def _check_in_range(at: date | datetime, value: str, field: str) -> None:
    day = at.date() if isinstance(at, datetime) else at
    if not MIN_DATE <= day <= MAX_DATE:
        raise _out_of_range(value, field)


def _unit_start(d: date, unit: str, week_start: int) -> date:
    if unit == "d":
        return d
    if unit == "w":
        return interval_start(local(d, ZoneInfo("UTC")), "week", week_start).date()
    if unit == "m":
        return d.replace(day=1)
    if unit == "q":
        return d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    return d.replace(month=1, day=1)


def check_date_range(date_range: object) -> None:
    """Syntax and range check at parse time, so a bad date is a 400 before anything runs (and a
    saved insight is checked like a query). Relative dates are resolved against the current time
    in UTC: they only move forward as time passes, so one valid now stays valid."""
    from eventlens.query.model import DateRange

    assert isinstance(date_range, DateRange)
    now = datetime.now(UTC)
    if date_range.date_from is not None and date_range.date_from != "all":
        resolve_date(date_range.date_from, ZoneInfo("UTC"), now, "dateRange.date_from")
    if date_range.date_to is not None:
        if date_range.date_to == "all":
            raise InvalidQuery(
                "dateRange.date_to: 'all' is only valid for date_from", field="dateRange.date_to"
            )
        resolve_date(date_range.date_to, ZoneInfo("UTC"), now, "dateRange.date_to")


def interval_start(at: datetime, interval: Interval, week_start: int) -> datetime:
    """Start of the calendar interval containing local datetime `at` (same tz)."""
    tz = at.tzinfo
    assert isinstance(tz, ZoneInfo)
    if interval == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    d = at.date()
    if interval == "week":
        # Python: Monday=0..Sunday=6; week_start 0 = Sunday, 1 = Monday.
        first = 6 if week_start == 0 else 0
        d -= timedelta(days=(d.weekday() - first) % 7)
    elif interval == "month":
        d = d.replace(day=1)
    return local(d, tz)


def shift(start: datetime, interval: Interval, n: int) -> datetime:
    """Start of the interval `n` intervals after (n < 0: before) the one starting at `start`."""
    tz = start.tzinfo
    assert isinstance(tz, ZoneInfo)
    try:
        if interval == "hour":
            # Hours are absolute: a fall-back day has 25 hour buckets, a spring-forward day 23.
            return from_us(to_us(start) + n * 3_600_000_000, tz)
        d = start.date()
        if interval == "day":
            d += timedelta(days=n)
        elif interval == "week":
            d += timedelta(days=7 * n)
        else:
            d += relativedelta(months=n)
        return local(d, tz)
    except (OverflowError, ValueError):
        # Past year 9999 (only the end of the bucket holding MAX_DATE gets here): the last
        # representable midnight, which is after every supported instant.
        if n < 0:
            raise
        return local(date.max, tz)


@dataclass(frozen=True)
class Buckets:
    """Consecutive calendar intervals [starts[i], starts[i+1]), the last one ending at `end_us`."""

    interval: Interval
    tz: ZoneInfo
    starts: tuple[datetime, ...]
    starts_us: tuple[int, ...]
    end_us: int

    def index_of(self, ts_us: int) -> int | None:
        """Index of the bucket holding ts_us, None outside [starts[0], end)."""
        if not self.starts_us or ts_us < self.starts_us[0] or ts_us >= self.end_us:
            return None
        return bisect.bisect_right(self.starts_us, ts_us) - 1

    def __len__(self) -> int:
        return len(self.starts)


MAX_BUCKETS = 100_000
_HOUR_US = 3_600_000_000
_LONGEST_US: dict[str, int] = {
    "hour": _HOUR_US,
    "day": 25 * _HOUR_US,
    "week": 7 * 24 * _HOUR_US + _HOUR_US,
    "month": 31 * 24 * _HOUR_US + _HOUR_US,
}


def _too_many_buckets(interval: Interval) -> InvalidQuery:
    return InvalidQuery(
        f"interval: the date range has more than {MAX_BUCKETS} {interval} buckets (the limit "
        f"is {MAX_BUCKETS}); use a longer interval or a shorter range",
        field="interval",
    )


def check_bucket_count(first_us: int, end_us: int, interval: Interval) -> None:
    """InvalidQuery (field "interval") if [first_us, end_us) surely holds more than MAX_BUCKETS
    intervals (even were every bucket as long as one can be, DST included): a cheap check for
    a fixed range, before anything is computed."""
    if (end_us - first_us) // _LONGEST_US[interval] > MAX_BUCKETS + 1:
        raise _too_many_buckets(interval)


def make_buckets(
    first_start: datetime, end_us: int, interval: Interval, week_start: int
) -> Buckets:
    """All intervals from the one starting at `first_start` while they start before end_us.
    InvalidQuery (field "interval") past MAX_BUCKETS: a result nobody can draw or read."""
    # Fail before building 100,000 datetimes when the span alone says it is too many.
    check_bucket_count(to_us(first_start), end_us, interval)
    starts: list[datetime] = []
    at = first_start
    while to_us(at) < end_us:
        starts.append(at)
        if len(starts) > MAX_BUCKETS:
            raise _too_many_buckets(interval)
        at = shift(at, interval, 1)
    return Buckets(
        interval=interval,
        tz=first_start.tzinfo,  # type: ignore[arg-type]
        starts=tuple(starts),
        starts_us=tuple(to_us(s) for s in starts),
        end_us=end_us,
    )


def day_label(start: datetime, interval: Interval) -> str:
    """`days` entry: local date of the bucket start, or local ISO with offset for hours."""
    if interval == "hour":
        return start.isoformat(timespec="seconds")
    return start.date().isoformat()


def human_label(start: datetime, interval: Interval) -> str:
    """PostHog's chart label: `3-Jan-2024`, or `3-Jan-2024 14:00` for hours."""
    text = f"{start.day}-{start.strftime('%b')}-{start.year}"
    if interval == "hour":
        text += start.strftime(" %H:%M")
    return text

"""The benchmark mix's time bounds in epoch microseconds (UTC, Sunday weeks), shared by the
hand-written peers so that every peer cuts the data exactly where the engines do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eventlens.bench.query_data import query_range

DAY_US = 86_400_000_000
WEEK_US = 7 * DAY_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us(dt: datetime) -> int:
    """An aware datetime as epoch microseconds."""
    return (dt - _EPOCH) // timedelta(microseconds=1)


def week_start(at_us: int) -> int:
    """The start (Sunday 00:00 UTC) of the week holding `at_us`, in epoch microseconds."""
    day = _EPOCH + timedelta(microseconds=at_us)
    d = day.date() - timedelta(days=(day.weekday() + 1) % 7)
    return us(datetime(d.year, d.month, d.day, tzinfo=UTC))


def query_bounds(end: datetime | None = None) -> tuple[int, int]:
    """[lo, hi) of the mix's date range (ending at `end`, default the generator's end):
    date_from 00:00 to the end of date_to's day."""
    dr = query_range() if end is None else query_range(end)
    lo = us(datetime.fromisoformat(dr["date_from"]).replace(tzinfo=UTC))
    hi = us(datetime.fromisoformat(dr["date_to"]).replace(tzinfo=UTC)) + DAY_US
    return lo, hi


def retention_bounds(hi: int, intervals: int = 8) -> tuple[int, int]:
    """[first, end) of the weekly retention range: the `intervals` weeks ending with the week
    that holds the last microsecond of the query range."""
    last = week_start(hi - 1)
    return last - (intervals - 1) * WEEK_US, last + WEEK_US

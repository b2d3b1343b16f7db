"""normalise: relative dates against `now` in the project timezone, buckets, DST, week start."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventlens.errors import InvalidQuery
from eventlens.query import normalise, parse_query
from eventlens.query.dates import day_label
from eventlens.query.normalise import NormalisedQuery

NOW = datetime(2024, 1, 10, 15, 30, tzinfo=UTC)  # a Wednesday


def norm(
    date_from: str | None = None,
    date_to: str | None = None,
    *,
    interval: str = "day",
    tz: str = "UTC",
    week_start: int = 0,
    now: datetime = NOW,
) -> NormalisedQuery:
    query: dict[str, Any] = {
        "kind": "TrendsQuery",
        "series": [{"event": "$pageview"}],
        "interval": interval,
        "dateRange": {"date_from": date_from, "date_to": date_to},
    }
    return normalise(parse_query(query), timezone=tz, week_start=week_start, now=now)


def days(nq: NormalisedQuery) -> list[str]:
    b = nq.buckets()
    return [day_label(s, b.interval) for s in b.starts]


def test_default_is_last_7_days_through_end_of_today() -> None:
    nq = norm()
    assert nq.date_from == datetime(2024, 1, 3, tzinfo=UTC)
    assert nq.date_to == datetime(2024, 1, 10, 23, 59, 59, 999999, tzinfo=UTC)
    assert days(nq) == [f"2024-01-{d:02d}" for d in range(3, 11)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-7d", datetime(2024, 1, 3)),
        ("-4w", datetime(2023, 12, 13)),
        ("-3m", datetime(2023, 10, 10)),
        ("-1y", datetime(2023, 1, 10)),
        ("-1mStart", datetime(2023, 12, 1)),
        ("-1yStart", datetime(2023, 1, 1)),
        ("mStart", datetime(2024, 1, 1)),
        ("dStart", datetime(2024, 1, 10)),
        ("2023-12-25", datetime(2023, 12, 25)),
        ("2023-12-25T18:45:00", datetime(2023, 12, 25)),  # day interval: start of its day
    ],
)
def test_relative_and_absolute_date_from(text: str, expected: datetime) -> None:
    nq = norm(text)
    assert nq.date_from == expected.replace(tzinfo=UTC)


def test_hours_keep_the_time_and_end_with_the_current_hour() -> None:
    nq = norm("-24h", interval="hour")
    assert nq.date_from == datetime(2024, 1, 9, 15, 30, tzinfo=UTC)
    assert nq.date_to == datetime(2024, 1, 10, 15, 59, 59, 999999, tzinfo=UTC)
    b = nq.buckets()
    assert len(b) == 25  # 09T15:00 .. 10T15:00, the first bucket holds date_from
    assert day_label(b.starts[0], "hour") == "2024-01-09T15:00:00+00:00"


def test_explicit_hour_date_to_is_an_inclusive_instant() -> None:
    nq = norm("2024-01-09T10:00:00", "2024-01-09T12:30:00", interval="hour")
    assert nq.date_to == datetime(2024, 1, 9, 12, 30, tzinfo=UTC)
    assert len(nq.buckets()) == 3


def test_all_starts_at_the_earliest_event() -> None:
    nq = norm("all")
    assert nq.date_from is None
    earliest = int(datetime(2024, 1, 8, 13, tzinfo=UTC).timestamp() * 1_000_000)
    assert days(nq) == ["2024-01-10"]  # no events: today only
    b = nq.buckets(earliest)
    assert [day_label(s, "day") for s in b.starts] == ["2024-01-08", "2024-01-09", "2024-01-10"]


def test_relative_dates_resolve_in_the_project_timezone() -> None:
    # 03:00 UTC on the 10th is still the 9th in New York.
    nq = norm("dStart", tz="America/New_York", now=datetime(2024, 1, 10, 3, tzinfo=UTC))
    assert days(nq) == ["2024-01-09"]
    assert nq.date_from is not None and nq.date_from.utcoffset() is not None
    assert nq.date_from.isoformat() == "2024-01-09T00:00:00-05:00"
    assert nq.date_to.isoformat() == "2024-01-09T23:59:59.999999-05:00"


def test_dst_fall_back_day_has_25_hour_buckets_labelled_unambiguously() -> None:
    nq = norm("2024-10-27", "2024-10-27", interval="hour", tz="Europe/Berlin")
    labels = days(nq)
    assert len(labels) == 25
    assert labels[2:4] == ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]


def test_dst_spring_forward_day_has_23_hour_buckets() -> None:
    nq = norm("2024-03-31", "2024-03-31", interval="hour", tz="Europe/Berlin")
    labels = days(nq)
    assert len(labels) == 23
    assert "2024-03-31T02:00:00+01:00" not in labels and labels[2] == "2024-03-31T03:00:00+02:00"


def test_day_buckets_follow_local_midnight_across_dst() -> None:
    nq = norm("2024-10-26", "2024-10-28", tz="Europe/Berlin")
    b = nq.buckets()
    lengths = [b - a for a, b in zip(b.starts_us, [*b.starts_us[1:], b.end_us], strict=True)]
    hour = 3_600_000_000
    assert lengths == [24 * hour, 25 * hour, 24 * hour]


@pytest.mark.parametrize(("week_start", "first"), [(0, "2024-01-07"), (1, "2024-01-08")])
def test_week_buckets_start_on_the_project_week_start(week_start: int, first: str) -> None:
    nq = norm("2024-01-10", "2024-01-20", interval="week", week_start=week_start)
    labels = days(nq)
    assert labels[0] == first  # the week containing date_from, never cut at the front
    assert len(labels) == 2


def test_month_buckets_start_on_the_first_and_date_to_ends_its_day() -> None:
    nq = norm("2023-11-15", "2024-01-02", interval="month")
    assert days(nq) == ["2023-11-01", "2023-12-01", "2024-01-01"]
    assert nq.date_to == datetime(2024, 1, 2, 23, 59, 59, 999999, tzinfo=UTC)


def test_date_to_before_date_from_is_invalid() -> None:
    with pytest.raises(InvalidQuery) as info:
        norm("2024-01-05", "2024-01-01")
    assert info.value.field == "dateRange.date_to"


def test_unknown_timezone_and_week_start_are_invalid() -> None:
    with pytest.raises(InvalidQuery) as info:
        norm(tz="Mars/Olympus")
    assert info.value.field == "timezone"
    with pytest.raises(InvalidQuery) as info:
        norm(week_start=3)
    assert info.value.field == "week_start"


def test_fingerprint_is_stable_and_means_the_resolved_query() -> None:
    a = norm("-7d")
    b = norm("2024-01-03", "2024-01-10")
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert norm("-7d", tz="Europe/Berlin").fingerprint != a.fingerprint
    assert norm("-7d", week_start=1).fingerprint != a.fingerprint
    later = norm("-7d", now=datetime(2024, 1, 11, tzinfo=UTC))
    assert later.fingerprint != a.fingerprint
    assert a.to_json()["date_from"] == "2024-01-03T00:00:00+00:00"


def test_retention_range_is_the_last_periods_ending_with_date_to() -> None:
    query = parse_query(
        {
            "kind": "RetentionQuery",
            "dateRange": {"date_to": "2024-01-02"},
            "retentionFilter": {"period": "Week", "totalIntervals": 3},
        }
    )
    # now is months later: the default date_from (-7d) would be after date_to, but plays no part.
    nq = normalise(query, timezone="UTC", week_start=1, now=datetime(2024, 6, 1, tzinfo=UTC))
    assert nq.interval == "week"
    assert nq.date_from == datetime(2023, 12, 18, tzinfo=UTC)  # Monday weeks: Dec 18, 25, Jan 1
    assert nq.date_to == datetime(2024, 1, 2, 23, 59, 59, 999999, tzinfo=UTC)

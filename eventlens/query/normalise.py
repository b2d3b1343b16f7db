"""Normalisation: a parsed query plus the project's calendar, with every date resolved.

Engines receive a `NormalisedQuery` and never look at `now` or at relative date strings, so two
engines (or a cache) given the same normalised query and data version must agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic

import orjson
from typing_extensions import TypeVar

from eventlens.errors import InvalidQuery
from eventlens.query.cohorts import CohortLookup, ResolvedCohort
from eventlens.query.dates import (
    MIN_DATE,
    Buckets,
    Interval,
    check_bucket_count,
    from_us,
    interval_start,
    local,
    make_buckets,
    resolve_date,
    shift,
    to_us,
    zone,
)
from eventlens.query.model import (
    FunnelsQuery,
    InsightQuery,
    PathsQuery,
    RetentionQuery,
    TrendsQuery,
    answer_fields,
    cohort_breakdown,
    cohort_ids,
)
from eventlens.query.posthog_fields import (
    is_aggregated,
    with_path_cleaning,
    with_test_account_filters,
)

DEFAULT_DATE_FROM = "-7d"
# The query type a NormalisedQuery carries: any kind by default, one kind where an engine's
# implementation of that kind receives it (eventlens.query.kinds.InsightKind.narrow).
Q = TypeVar("Q", bound=InsightQuery, default=InsightQuery, covariant=True)
_PERIOD_INTERVAL: dict[str, Interval] = {
    "Hour": "hour",
    "Day": "day",
    "Week": "week",
    "Month": "month",
}


@dataclass(frozen=True)
class NormalisedQuery(Generic[Q]):
    """A query ready to run.

    - `date_from`: local aware datetime where the range starts as given (None for `all`: the
      engine starts at the earliest event of the snapshot; retention: the start of its first
      period, whatever the query's date_from);
    - `date_to`: local aware datetime of the LAST instant in range (inclusive; for intervals of a
      day or longer it is 23:59:59.999999 of date_to's day);
    - `interval`: the bucket size (retention: its period);
    - `cohorts`: every cohort the query names, resolved (static members, or a dynamic
      definition with its windows fixed) at normalisation time, sorted by id; part of the
      canonical JSON, so editing a cohort changes the fingerprint and the cache key;
    - `fingerprint`: sha256 hex of the canonical JSON (`to_json()`), stable across processes.
    """

    query: Q
    timezone: str
    week_start: int
    interval: Interval
    date_from: datetime | None
    date_to: datetime
    fingerprint: str = field(default="", compare=False)
    cohorts: tuple[ResolvedCohort, ...] = ()

    @property
    def kind(self) -> str:
        return self.query.kind

    @property
    def end_us(self) -> int:
        """Exclusive end of the range in epoch microseconds."""
        return to_us(self.date_to) + 1

    @property
    def floor_us(self) -> int:
        """Epoch µs of MIN_DATE's midnight in the project timezone: no event before it is ever
        counted (`date_from = all` starts there at the earliest)."""
        return to_us(local(MIN_DATE, zone(self.timezone)))

    def all_start(self, earliest_us: int) -> datetime:
        """Where `date_from = all` starts given the snapshot's earliest event: that event, but
        never before MIN_DATE (one ancient outlier must not make the range unreadable)."""
        return from_us(max(earliest_us, self.floor_us), zone(self.timezone))

    def buckets(self, earliest_us: int | None = None) -> Buckets:
        """The range's buckets: the first starts at the interval containing date_from (so a week
        or month is never cut at the front), the last ends at date_to. `earliest_us` resolves
        `date_from = all` (`all_start`; None -> the day of date_to)."""
        start = self.date_from
        if start is None:
            start = self.all_start(earliest_us) if earliest_us is not None else self.date_to
            start = min(start, self.date_to, key=to_us)
        first = interval_start(start, self.interval, self.week_start)
        return make_buckets(first, self.end_us, self.interval, self.week_start)

    def to_json(self) -> dict[str, Any]:
        """Canonical JSON: the query (defaults filled, without the raw dateRange) and the resolved
        calendar. Equal for two inputs that mean the same thing."""
        body = self.query.model_dump(mode="json", exclude={"dateRange"})
        out = {
            "query": body,
            "timezone": self.timezone,
            "week_start": self.week_start,
            "interval": self.interval,
            "date_from": None if self.date_from is None else self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
        }
        if self.cohorts:  # absent otherwise: fingerprints of cohort-free queries are unchanged
            out["cohorts"] = [c.to_json() for c in self.cohorts]
        return out

    def answer_fingerprint(self) -> str:
        """sha256 hex of what determines the answer: `to_json()` without the presentation-only
        fields (model.answer_fields). The result cache keys on it, so a query that differs only
        in colours, legends or axis formats is served the same cached answer."""
        body = answer_fields(self.query)
        assert isinstance(body, dict)
        body.pop("dateRange", None)  # resolved into date_from / date_to below
        canonical = {**self.to_json(), "query": body}
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def normalise(
    query: InsightQuery,
    *,
    timezone: str = "UTC",
    week_start: int = 0,
    now: datetime,
    test_account_filters: Sequence[Any] = (),
    path_cleaning_filters: Sequence[Any] = (),
    cohorts: CohortLookup | None = None,
) -> NormalisedQuery:
    """Resolve `query`'s dates in the project calendar.

    timezone: IANA name; week_start: 0 = Sunday, 1 = Monday; now: the current instant (naive is
    taken as UTC). Relative dates are resolved against `now` in the project timezone; the default
    date_from is -7d and the default date_to is now. Raises InvalidQuery for an unknown timezone,
    a bad week_start, an unparseable date, or date_to before date_from.
    test_account_filters: the project's (PostHog's team.test_account_filters); with
    `filterTestAccounts: true` they are ANDed into the query's properties here, so engines and
    the fingerprint see them. A paths query's funnelSource gets them by its own
    filterTestAccounts.
    path_cleaning_filters: the project's path cleaning rules (PostHog's
    team.path_cleaning_filters); a paths query with `pathReplacements: true` applies them before
    its own `localPathCleaningFilters` (posthog_fields.with_path_cleaning).
    cohorts: the project's cohorts by id, resolved at `now` (eventlens.query.cohorts); an id
    the query names that it does not know is an InvalidQuery naming the field. Without it the
    query's cohorts stay unresolved (validation only: engines refuse to run such a query).
    """
    query = with_test_account_filters(query, test_account_filters)
    query = with_path_cleaning(query, path_cleaning_filters)
    if isinstance(query, PathsQuery) and query.funnelPathsFilter is not None:
        fp = query.funnelPathsFilter
        source = with_test_account_filters(fp.funnelSource, test_account_filters)
        if source is not fp.funnelSource:
            query = query.model_copy(
                update={"funnelPathsFilter": fp.model_copy(update={"funnelSource": source})}
            )
    tz = zone(timezone)
    if week_start not in (0, 1):
        raise InvalidQuery("week_start must be 0 (Sunday) or 1 (Monday)", field="week_start")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if isinstance(query, RetentionQuery):
        interval = _PERIOD_INTERVAL[query.retentionFilter.period]
    elif isinstance(query, TrendsQuery) and is_aggregated(query):
        interval = "day"  # PostHog totals a range by days, whatever interval the query names
    elif isinstance(query, PathsQuery):
        interval = "day"  # paths have no buckets; a day keeps date_to at the end of its day
    else:
        interval = query.interval
    dr = query.dateRange

    date_from: datetime | None
    raw_from = dr.date_from or DEFAULT_DATE_FROM
    if raw_from == "all":
        date_from = None
    else:
        date_from = resolve_date(raw_from, tz, now, "dateRange.date_from", week_start).at
        if interval != "hour":
            date_from = interval_start(date_from, "day", week_start)

    if dr.date_to is None:
        to = resolve_date("-0h", tz, now, "dateRange.date_to")
    else:
        to = resolve_date(dr.date_to, tz, now, "dateRange.date_to", week_start)
    if interval != "hour" or to.date_only:
        # insights.md: for intervals of a day or longer date_to extends to the end of its day
        # (a date without a time means the whole day for hours too).
        end_excl = shift(interval_start(to.at, "day", week_start), "day", 1)
    elif to.relative:
        end_excl = shift(interval_start(to.at, "hour", week_start), "hour", 1)
    else:
        end_excl = to.at + timedelta(microseconds=1)
    date_to = from_us(to_us(end_excl) - 1, tz)
    if isinstance(query, RetentionQuery):
        # Retention's range is the last totalIntervals periods ending with the one holding
        # date_to; date_from plays no part (insights.md "Retention").
        last = interval_start(date_to, interval, week_start)
        date_from = shift(last, interval, -(query.retentionFilter.totalIntervals - 1))

    if date_from is not None and to_us(date_from) > to_us(date_to):
        raise InvalidQuery(
            f"dateRange: date_to ({date_to.isoformat()}) is before date_from "
            f"({date_from.isoformat()})",
            field="dateRange.date_to",
        )
    if date_from is not None:
        first = interval_start(date_from, interval, week_start)
        check_bucket_count(to_us(first), to_us(date_to) + 1, interval)
    resolved = () if cohorts is None else _resolve_cohorts(query, cohorts)
    nq = NormalisedQuery(
        query=query,
        timezone=timezone,
        week_start=week_start,
        interval=interval,
        date_from=date_from,
        date_to=date_to,
        cohorts=resolved,
    )
    canonical = orjson.dumps(nq.to_json(), option=orjson.OPT_SORT_KEYS)
    return NormalisedQuery(
        query=query,
        timezone=timezone,
        week_start=week_start,
        interval=interval,
        date_from=date_from,
        date_to=date_to,
        fingerprint=hashlib.sha256(canonical).hexdigest(),
        cohorts=resolved,
    )


def with_query(nq: NormalisedQuery, query: InsightQuery) -> NormalisedQuery:
    """`nq` with another query (same calendar, range and cohorts) and its own fingerprint."""
    out = replace(nq, query=query, fingerprint="")
    canonical = orjson.dumps(out.to_json(), option=orjson.OPT_SORT_KEYS)
    return replace(out, fingerprint=hashlib.sha256(canonical).hexdigest())


def cohort_paths(query: InsightQuery) -> list[tuple[str, int]]:
    """(field path, cohort id) of every cohort the query names, in query order."""
    lists: list[tuple[str, Any]] = [("properties", query.properties)]
    if isinstance(query, RetentionQuery):
        for name in ("targetEntity", "returningEntity"):
            entity = getattr(query.retentionFilter, name)
            lists.append((f"retentionFilter.{name}.properties", entity.properties))
    elif not isinstance(query, PathsQuery):  # paths have no series (merge of h-paths, h-cohorts)
        lists += [(f"series[{i}].properties", n.properties) for i, n in enumerate(query.series)]
    if isinstance(query, FunnelsQuery):
        lists += [
            (f"funnelsFilter.exclusions[{i}].properties", ex.properties)
            for i, ex in enumerate(query.funnelsFilter.exclusions)
        ]
    out = [(path, cid) for path, props in lists for cid in sorted(cohort_ids(props))]
    ids = cohort_breakdown(getattr(query, "breakdownFilter", None)) or []
    out += [("breakdownFilter.breakdown", cid) for cid in ids if cid != 0]
    return out


def _resolve_cohorts(query: InsightQuery, lookup: CohortLookup) -> tuple[ResolvedCohort, ...]:
    found: dict[int, ResolvedCohort] = {}
    for path, cid in cohort_paths(query):
        if cid in found:
            continue
        cohort = lookup(cid)
        if cohort is None:
            raise InvalidQuery(f"{path}: cohort {cid} does not exist in this project", field=path)
        found[cid] = cohort
    return tuple(found[cid] for cid in sorted(found))

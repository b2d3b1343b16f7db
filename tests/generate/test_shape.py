"""The data tells the story benchmark.md asks for: identify, funnels, returns, seasonality."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest

from eventlens.generate import generate
from eventlens.generate import shape as S

N = 150_000


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    events = pa.Table.from_batches(list(generate(N, seed=11, chunk_size=60_000)))
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.register("raw", events)
    # Resolve every event to a person: a user id maps back to the anonymous id it identified.
    c.execute(
        """
        CREATE TABLE ev AS
        WITH ident AS (
            SELECT distinct_id AS user_id,
                   json_extract_string(properties, '$."$anon_distinct_id"') AS anon_id,
                   timestamp AS identified_at
            FROM raw WHERE event = '$identify')
        SELECT raw.*, coalesce(ident.anon_id, raw.distinct_id) AS person
        FROM raw LEFT JOIN ident ON raw.distinct_id = ident.user_id
        """
    )
    yield c
    c.close()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:  # type: ignore[type-arg]
    row = con.execute(sql).fetchone()
    assert row is not None
    return row


def test_about_thirty_skewed_event_names(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT count(*) c FROM ev GROUP BY event ORDER BY c DESC"
    counts = [r[0] for r in con.execute(sql).fetchall()]
    assert 25 <= len(counts) <= 35
    assert counts[0] > 10 * counts[len(counts) // 2]
    top = one(con, "SELECT event FROM ev GROUP BY event ORDER BY count(*) DESC LIMIT 1")
    assert top == ("$pageview",)


def test_every_event_has_the_common_properties(con: duckdb.DuckDBPyConnection) -> None:
    missing = one(
        con,
        """SELECT count(*) FROM ev WHERE json_extract_string(properties, '$."$browser"') IS NULL
           OR json_extract_string(properties, '$."$os"') IS NULL
           OR json_extract_string(properties, '$.country') IS NULL
           OR json_extract_string(properties, '$."$current_url"') NOT LIKE 'https://%'""",
    )
    assert missing == (0,)
    sql = """SELECT count(DISTINCT properties->>'$."$browser"') FROM ev"""
    browsers = one(con, sql)[0]
    assert browsers == len(S.BROWSERS)


def test_revenue_only_on_purchases(con: duckdb.DuckDBPyConnection) -> None:
    bad, purchases, positive = one(
        con,
        """SELECT count(*) FILTER (WHERE event <> 'purchase'
                                   AND properties->>'revenue' IS NOT NULL),
                  count(*) FILTER (WHERE event = 'purchase'),
                  count(*) FILTER (WHERE event = 'purchase'
                                   AND CAST(properties->>'revenue' AS DOUBLE) > 0)
           FROM ev""",
    )
    assert bad == 0 and purchases > 0 and positive == purchases


def test_funnel_conversion_strictly_decreases(con: duckdb.DuckDBPyConnection) -> None:
    steps = one(
        con,
        """SELECT count(DISTINCT person) FILTER (WHERE event = '$pageview'),
                  count(DISTINCT person) FILTER (WHERE event = 'signup'),
                  count(DISTINCT person) FILTER (WHERE event = 'activated'),
                  count(DISTINCT person) FILTER (WHERE event = 'purchase')
           FROM ev""",
    )
    assert steps[0] > steps[1] > steps[2] > steps[3] > 0
    # Ordered: every purchaser signed up and activated before buying.
    unordered = one(
        con,
        """WITH f AS (SELECT person,
                  min(timestamp) FILTER (WHERE event = 'signup') s,
                  min(timestamp) FILTER (WHERE event = 'activated') a,
                  min(timestamp) FILTER (WHERE event = 'purchase') p
                FROM ev GROUP BY person)
           SELECT count(*) FROM f WHERE p IS NOT NULL AND NOT (s < a AND a < p)""",
    )
    # Only the last person of a chunk can be cut mid-story; chunks are whole persons otherwise.
    assert unordered[0] <= 3


def test_identified_users_have_events_under_both_ids(con: duckdb.DuckDBPyConnection) -> None:
    identified, both, anon_after, user_before = one(
        con,
        """WITH ident AS (
               SELECT distinct_id AS user_id, properties->>'$."$anon_distinct_id"' AS anon_id,
                      timestamp AS at FROM ev WHERE event = '$identify')
           SELECT count(*),
                  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ev WHERE distinct_id = anon_id)
                                   AND EXISTS (SELECT 1 FROM ev WHERE distinct_id = user_id
                                               AND event <> '$identify')),
                  (SELECT count(*) FROM ev JOIN ident ON ev.distinct_id = ident.anon_id
                   WHERE ev.timestamp >= ident.at),
                  (SELECT count(*) FROM ev JOIN ident ON ev.distinct_id = ident.user_id
                   WHERE ev.timestamp < ident.at)
           FROM ident""",
    )
    assert identified > 100
    assert both > identified // 2
    assert anon_after == 0 and user_before == 0
    emails = one(
        con,
        """SELECT count(*) FROM ev WHERE event = '$identify'
           AND properties->'$."$set"'->>'email' = distinct_id || '@example.com'
           AND properties->'$."$set"'->>'plan' IS NOT NULL""",
    )[0]
    assert emails == identified
    users = one(con, "SELECT count(DISTINCT distinct_id) FROM ev WHERE event = '$identify'")[0]
    assert users == identified  # one $identify per user, user ids unique across chunks


def test_people_return_on_later_days_and_weeks_with_decay(
    con: duckdb.DuckDBPyConnection,
) -> None:
    persons, multi_day, multi_week = one(
        con,
        """WITH p AS (SELECT person, count(DISTINCT date_trunc('day', timestamp)) d,
                             count(DISTINCT date_trunc('week', timestamp)) w
                      FROM ev GROUP BY person)
           SELECT count(*), count(*) FILTER (WHERE d >= 2), count(*) FILTER (WHERE w >= 2)
           FROM p""",
    )
    assert 0.2 < multi_day / persons < 0.9
    assert multi_week / persons > 0.15
    # Weekly retention of persons who arrived in the first two weeks decays.
    retained = [
        r[0]
        for r in con.execute(
            """WITH first AS (SELECT person, min(timestamp) t0 FROM ev GROUP BY person),
                    cohort AS (SELECT * FROM first
                               WHERE t0 < (SELECT min(timestamp) FROM ev) + INTERVAL 14 DAY),
                    k AS (SELECT unnest([1, 4, 8]) AS w)
               SELECT count(DISTINCT ev.person) FROM cohort JOIN ev USING (person) CROSS JOIN k
               WHERE floor(date_diff('day', cohort.t0, ev.timestamp) / 7) = k.w
               GROUP BY k.w ORDER BY k.w"""
        ).fetchall()
    ]
    assert len(retained) == 3 and retained[0] > retained[1] > retained[2] > 0


def test_weekends_and_nights_are_quieter(con: duckdb.DuckDBPyConnection) -> None:
    weekday, weekend = one(
        con,
        """WITH d AS (SELECT date_trunc('day', timestamp) dd, count(*) n FROM ev
                      WHERE timestamp > (SELECT min(timestamp) FROM ev) + INTERVAL 1 DAY
                        AND timestamp < (SELECT max(timestamp) FROM ev) - INTERVAL 1 DAY
                      GROUP BY 1)
           SELECT avg(n) FILTER (WHERE isodow(dd) < 6), avg(n) FILTER (WHERE isodow(dd) >= 6)
           FROM d""",
    )
    assert weekend < 0.8 * weekday
    # US visitors (UTC-5) in their local night (01:00-05:00) vs local afternoon (13:00-17:00).
    night, day = one(
        con,
        """SELECT count(*) FILTER (WHERE hour(timestamp) BETWEEN 6 AND 9),
                  count(*) FILTER (WHERE hour(timestamp) BETWEEN 18 AND 21)
           FROM ev WHERE properties->>'country' = 'US'""",
    )
    assert night < 0.5 * day
    days = one(con, "SELECT count(DISTINCT date_trunc('day', timestamp)) FROM ev")[0]
    assert days == 90

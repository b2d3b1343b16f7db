"""Simulate a population of visitors as numpy columns (no per-event Python loop).

`simulate` draws `n` persons and all their events inside [start, end): first visit, returning
sessions, events inside sessions, and the signup -> identify -> activated -> purchase funnel.
Persons are local indices 0..n-1; turning them into ids and JSON is `encode`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventlens.generate import shape as S

NO_TS = np.iinfo(np.int64).max  # "never" (e.g. a person who never identifies)
# 1970-01-01 was a Thursday: (days since epoch + 3) % 7 gives Monday = 0 .. Sunday = 6.
_EPOCH_WEEKDAY_SHIFT = 3


@dataclass
class Population:
    """Per-person columns (length n) and per-event columns (length = events), unsorted."""

    country: np.ndarray  # int index into S.COUNTRIES
    os: np.ndarray  # int index into S.OSES
    browser: np.ndarray  # int index into S.BROWSERS
    identify_ts: np.ndarray  # µs; NO_TS when the person never identifies in the window
    purchase_ts: np.ndarray  # µs of the first purchase; NO_TS if none
    plan: np.ndarray  # int index into S.PLANS (meaningful only with a purchase)
    person: np.ndarray  # per event: owner index
    ts: np.ndarray  # per event: µs since epoch, UTC
    event: np.ndarray  # per event: int index into S.EVENT_NAMES
    path: np.ndarray  # per event: int index into S.PATHS


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    out: np.ndarray = rng.choice(len(p), size=size, p=p / p.sum())
    return out


def _is_weekend(local_day: np.ndarray) -> np.ndarray:
    return ((local_day + _EPOCH_WEEKDAY_SHIFT) % 7) >= 5


def _time_of_day(rng: np.random.Generator, size: int) -> np.ndarray:
    """µs into a local day, following the hourly profile."""
    hour = _choice(rng, S.HOUR_WEIGHTS, size)
    return (hour * S.US_PER_HOUR + rng.random(size) * S.US_PER_HOUR).astype(np.int64)


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum of `values` restarted at every group (groups are contiguous
    runs of the given `counts`)."""
    total = np.cumsum(values)
    before = total - values
    starts = np.cumsum(counts) - counts
    nonempty = counts > 0
    out: np.ndarray = total - np.repeat(before[starts[nonempty]], counts[nonempty])
    return out


def simulate(rng: np.random.Generator, n: int, start_us: int, end_us: int) -> Population:
    """Draw `n` persons and their events in [start_us, end_us). Deterministic given `rng`."""
    country = _choice(rng, np.array([c[2] for c in S.COUNTRIES]), n)
    offset = np.array([c[1] for c in S.COUNTRIES], dtype=np.int64)[country] * S.US_PER_HOUR
    os_ = _choice(rng, np.array([o[2] for o in S.OSES]), n)
    cum = np.cumsum(S.BROWSER_GIVEN_OS, axis=1)
    browser = np.minimum((rng.random(n)[:, None] > cum[os_]).sum(axis=1), len(S.BROWSERS) - 1)

    # First visit: a local day (growing traffic, quieter weekends) and a local time of day.
    day0 = start_us // S.US_PER_DAY
    n_days = max(1, -(-(end_us - day0 * S.US_PER_DAY) // S.US_PER_DAY))
    days = np.arange(n_days)
    day_w = (1 + S.GROWTH * days / n_days) * np.where(_is_weekend(day0 + days), S.WEEKEND_KEEP, 1.0)
    first_day = day0 + _choice(rng, day_w, n)
    t0 = first_day * S.US_PER_DAY + _time_of_day(rng, n) - offset
    # The local day may fall just outside the UTC window: move it one day inwards.
    t0 = np.where(t0 < start_us, t0 + S.US_PER_DAY, t0)
    t0 = np.where(t0 >= end_us, t0 - S.US_PER_DAY, t0)
    t0 = np.clip(t0, start_us, end_us - 1)

    # Returns: geometric count with a per-person return probability (0 for bouncers).
    q = np.clip(rng.beta(*S.RETURN_BETA, n), 0.0, 0.98)
    q[rng.random(n) < S.BOUNCE_SHARE] = 0.0
    returns = np.minimum(rng.geometric(1.0 - q) - 1, S.MAX_RETURNS)
    r_owner = np.repeat(np.arange(n), returns)
    n_ret = len(r_owner)
    habit = rng.random(n_ret) < S.WEEKLY_HABIT_SHARE
    gap = np.where(
        habit,
        7.0 + rng.normal(0.0, 0.3, n_ret),
        rng.lognormal(np.log(S.SHORT_GAP_MEDIAN_DAYS), S.SHORT_GAP_SIGMA, n_ret),
    )
    since_first = _group_cumsum(np.maximum(gap, 0.02), returns)  # days after the first visit
    local_t0_days = (t0 + offset) / S.US_PER_DAY
    r_day = np.floor(local_t0_days[r_owner] + since_first).astype(np.int64)
    r_ts = r_day * S.US_PER_DAY + _time_of_day(rng, n_ret) - offset[r_owner]
    # A return on the first visit's day must not precede it.
    r_ts = np.where(
        r_ts <= t0[r_owner], t0[r_owner] + (since_first * S.US_PER_DAY).astype(np.int64), r_ts
    )
    keep = (r_ts < end_us) & ~(_is_weekend(r_day) & (rng.random(n_ret) > S.WEEKEND_KEEP))
    s_owner = np.concatenate([np.arange(n), r_owner[keep]])
    s_start = np.concatenate([t0, r_ts[keep]])
    order = np.argsort(s_owner, kind="stable")  # per person: first visit, then returns
    s_owner, s_start = s_owner[order], s_start[order]
    n_sess = np.bincount(s_owner, minlength=n)
    first_sess = np.cumsum(n_sess) - n_sess

    # Events inside sessions: an opening pageview, then skewed events ~45 s apart.
    per_sess = rng.geometric(S.SESSION_EXTRA_P, len(s_owner))
    e_sess = np.repeat(np.arange(len(s_owner)), per_sess)
    n_ev = len(e_sess)
    step = rng.exponential(S.EVENT_GAP_MEAN_S * S.US_PER_SECOND, n_ev).astype(np.int64)
    pos_first = np.cumsum(per_sess) - per_sess
    is_open = np.zeros(n_ev, dtype=bool)
    is_open[pos_first] = True
    step[is_open] = 0
    e_ts = s_start[e_sess] + _group_cumsum(step, per_sess)
    e_code = np.where(is_open, S.EV_PAGEVIEW, _choice(rng, S.SESSION_EVENT_WEIGHTS, n_ev)).astype(
        np.int16
    )
    e_path = _choice(rng, S.PATH_WEIGHTS, n_ev).astype(np.int8)

    # Funnel: signup in one of the first three sessions, identify right after; activation
    # and purchase follow after lognormal delays; purchasers on monthly plans renew.
    signup = rng.random(n) < S.SIGNUP_BASE + S.SIGNUP_PER_Q * q
    j = np.minimum((rng.random(n) * np.minimum(n_sess, 3)).astype(np.int64), n_sess - 1)
    t_signup = s_start[first_sess + j] + rng.integers(60, 600, n) * S.US_PER_SECOND
    signup &= t_signup < end_us
    t_ident = t_signup + S.US_PER_SECOND
    identified = signup & (t_ident < end_us)
    t_act = t_ident + _hours(rng, S.ACTIVATE_DELAY_MEDIAN_H, S.ACTIVATE_DELAY_SIGMA, n)
    activated = identified & (rng.random(n) < S.ACTIVATE_P) & (t_act < end_us)
    t_pur = t_act + _hours(rng, S.PURCHASE_DELAY_MEDIAN_H, S.PURCHASE_DELAY_SIGMA, n)
    purchased = activated & (rng.random(n) < S.PURCHASE_P) & (t_pur < end_us)
    plan = _choice(rng, np.array([p[1] for p in S.PLANS]), n)
    renews = purchased & (rng.random(n) < S.RENEWAL_P)
    ren_owner = np.repeat(np.flatnonzero(renews), S.MAX_RENEWALS)
    ren_k = np.tile(np.arange(1, S.MAX_RENEWALS + 1), int(renews.sum()))
    ren_ts = t_pur[ren_owner] + ren_k * 30 * S.US_PER_DAY
    ren_keep = ren_ts < end_us

    f_owner = [np.flatnonzero(m) for m in (signup, identified, activated, purchased)]
    f_ts = [t_signup, t_ident, t_act, t_pur]
    codes = [S.EV_SIGNUP, S.EV_IDENTIFY, S.EV_ACTIVATED, S.EV_PURCHASE]
    owners = [*f_owner, ren_owner[ren_keep]]
    times = [t[o] for t, o in zip(f_ts, f_owner, strict=True)] + [ren_ts[ren_keep]]
    fcodes = [np.full(len(o), c, np.int16) for o, c in zip(f_owner, codes, strict=True)]
    fcodes.append(np.full(int(ren_keep.sum()), S.EV_PURCHASE, np.int16))

    person = np.concatenate([s_owner[e_sess], *owners])
    ts = np.concatenate([e_ts, *times])
    event = np.concatenate([e_code, *fcodes])
    path_of = np.array([S.PATH_OF_FUNNEL.get(c, 0) for c in range(len(S.EVENT_NAMES))], np.int8)
    path = np.concatenate([e_path, path_of[np.concatenate(fcodes)]])
    inside = ts < end_us
    return Population(
        country=country,
        os=os_,
        browser=browser,
        identify_ts=np.where(identified, t_ident, NO_TS),
        purchase_ts=np.where(purchased, t_pur, NO_TS),
        plan=plan,
        person=person[inside],
        ts=ts[inside],
        event=event[inside],
        path=path[inside],
    )


def _hours(rng: np.random.Generator, median_h: float, sigma: float, n: int) -> np.ndarray:
    return (rng.lognormal(np.log(median_h), sigma, n) * S.US_PER_HOUR).astype(np.int64)

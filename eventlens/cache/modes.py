"""PostHog's refresh modes (posthog/hogql_queries/query_runner.py `ExecutionMode`, chosen from
the request's `refresh` as in posthog/api/query.py), with freshness by data version instead of
by the clock: an answer is fresh when it was computed at the table's current version.

- `blocking` (default; RECENT_CACHE_CALCULATE_BLOCKING_IF_STALE): the fresh answer, else
  compute now (incrementally);
- `async` (RECENT_CACHE_CALCULATE_ASYNC_IF_STALE): the fresh answer; else the last answer (or
  none) now, and a refresh in the background;
- `async_except_on_cache_miss` (..._ASYNC_IF_STALE_AND_BLOCKING_ON_MISS): as async, but compute
  now when nothing is cached;
- `lazy_async` (EXTENDED_CACHE_CALCULATE_ASYNC_IF_STALE): the last answer, refreshed in the
  background only once it is older than `cache_lazy_seconds`;
- `force_async` (CALCULATE_ASYNC_ALWAYS): refresh in the background whatever is cached;
- `force_blocking`, `true` (CALCULATE_BLOCKING_ALWAYS): compute now from scratch (no partial
  reused);
- `force_cache`, `false` (CACHE_ONLY_NEVER_CALCULATE): never compute: the last answer, or a
  cache miss.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    BLOCKING = "blocking"
    ASYNC = "async"
    ASYNC_EXCEPT_ON_MISS = "async_except_on_cache_miss"
    LAZY_ASYNC = "lazy_async"
    FORCE_ASYNC = "force_async"
    FORCE_BLOCKING = "force_blocking"
    FORCE_CACHE = "force_cache"


MODES = tuple(m.value for m in Mode)


def mode_of(refresh: str | bool | None) -> Mode:
    """The mode a request's `refresh` asks for: PostHog's names, True = force_blocking and
    False = force_cache (PostHog's legacy booleans), None = blocking. ValueError otherwise."""
    if refresh is None:
        return Mode.BLOCKING
    if refresh is True:
        return Mode.FORCE_BLOCKING
    if refresh is False:
        return Mode.FORCE_CACHE
    try:
        return Mode(refresh)
    except ValueError:
        raise ValueError(f"refresh must be one of {', '.join(MODES)} or a boolean") from None

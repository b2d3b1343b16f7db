"""Per-project capture rate limit: a token bucket over events per second.

Off by default (self-hosted: the operator owns the hardware); when set, a project that sends
faster than `rate` events/s (after a burst of `burst` events) gets 429 with `Retry-After`, and
the SDKs retry later. Nothing is dropped: a limited request is rejected whole, before the log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from eventlens.errors import RateLimited


class TokenBucket:
    """`rate` tokens per second up to `burst`; `take(n)` spends n or raises RateLimited."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._at = burst, clock()

    def take(self, n: int) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if n <= self._tokens:
            self._tokens -= n
            return
        # A request larger than the burst can never pass whole; tell the client when the
        # bucket is full instead of a wait that would never be enough.
        missing = min(n, self.burst) - self._tokens
        raise RateLimited(
            f"project is over its capture rate limit of {self.rate:g} events/s; retry later",
            retry_after=max(0.001, missing / self.rate) if self.rate > 0 else math.inf,
        )


class ProjectRateLimiter:
    """One bucket per project id; `rate <= 0` disables limiting."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate * 2, 1.0)
        self._buckets: dict[int, TokenBucket] = {}

    def check(self, project_id: int, events: int) -> None:
        """Spend `events` tokens of `project_id`; raises RateLimited (429) when over."""
        if self.rate <= 0 or events <= 0:
            return
        bucket = self._buckets.get(project_id)
        if bucket is None:
            bucket = self._buckets[project_id] = TokenBucket(self.rate, self.burst)
        bucket.take(events)

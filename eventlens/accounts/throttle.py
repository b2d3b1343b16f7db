"""Login throttling: failed attempts per account and per address in a sliding window.

In memory, per server process (the server is one process; a restart forgets, which only ever
lets an attacker start over after an operator restarted). Throttled attempts are answered 429
with Retry-After before the password is looked at, so the answer never tells a right password
from a wrong one while throttled.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

ADDRESS_FACTOR = 10  # an address (a NAT, an office) gets this many times the account's budget


class LoginThrottle:
    def __init__(
        self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until a login for `account` from `address` is allowed again; 0 if now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key, limit in self._limits(account, address):
                q = self._recent(key, now)
                if len(q) >= limit:
                    wait = max(wait, q[len(q) - limit] + self.window - now)
        return wait

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key, _ in self._limits(account, address):
                self._recent(key, now).append(now)

    def succeeded(self, account: str) -> None:
        """A right password clears the account's failures (not the address's)."""
        with self._lock:
            self._failures.pop("acct:" + account, None)

    def _limits(self, account: str, address: str) -> list[tuple[str, int]]:
        return [
            ("acct:" + account, self.max_failures),
            ("addr:" + address, self.max_failures * ADDRESS_FACTOR),
        ]

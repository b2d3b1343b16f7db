"""The Redis backend: several EventLens servers share answers, query statuses and single-flight
leases through one Redis (redis-py).

Redis being down or slow never fails a query: every call that fails is counted
(`eventlens_query_cache_backend_errors_total`), logged once per outage, and answered as a miss
(reads), a no-op (writes) or "take the lease" (the query computes locally). After a failure the
backend skips Redis for `retry_after_s` so a dead server does not add a connect timeout to
every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from eventlens.observability import metrics
from eventlens.observability.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")
PREFIX = "eventlens:cache:"
# Keep the newer data version when two servers write one answer (KEYS[1]; ARGV: version,
# body, ttl ms). The version sits in its own hash field, so the check needs no decoding.
_PUT_NEWER = """
local have = redis.call('HGET', KEYS[1], 'v')
if have and tonumber(have) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
# Renew or release a lease only if this owner still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """Answers as hashes `eventlens:cache:answer:<key>` (fields v, b), leases as
    `...:lease:<key@version>` (SET NX PX), statuses as `...:status:<id>` (SET PX)."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 7 * 86_400.0,
        timeout_s: float = 0.5,
        retry_after_s: float = 2.0,
    ) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.ttl_ms = int(ttl_s * 1000)
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._put = self.client.register_script(_PUT_NEWER)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)

    @property
    def down(self) -> bool:
        """Whether Redis failed recently (calls are skipped until it is retried)."""
        return time.monotonic() < self._down_until

    def _call(self, fn: Callable[[], Any], fallback: T) -> T | Any:
        if self.down:
            return fallback
        try:
            return fn()
        except redis.RedisError as exc:
            metrics.query_cache_backend_errors.inc()
            with self._lock:
                first = not self.down
                self._down_until = time.monotonic() + self.retry_after_s
            if first:
                log.warning("cache.redis_unavailable", error=str(exc))
            return fallback

    def get_answer(self, key: str) -> bytes | None:
        body: Any = self._call(lambda: self.client.hget(PREFIX + "answer:" + key, "b"), None)
        return body if isinstance(body, bytes) else None

    def put_answer(self, key: str, version: int, body: bytes) -> None:
        self._call(
            lambda: self._put(keys=[PREFIX + "answer:" + key], args=[version, body, self.ttl_ms]),
            None,
        )

    def acquire(self, lease: str, owner: str, ttl_s: float) -> bool:
        # Redis down: "acquired", so the query computes here instead of waiting for nobody.
        got: object = self._call(
            lambda: self.client.set(
                PREFIX + "lease:" + lease, owner, nx=True, px=int(ttl_s * 1000)
            ),
            True,
        )
        return bool(got)

    def renew(self, lease: str, owner: str, ttl_s: float) -> bool:
        done = self._call(
            lambda: self._renew(keys=[PREFIX + "lease:" + lease], args=[owner, int(ttl_s * 1000)]),
            0,
        )
        return bool(done)

    def release(self, lease: str, owner: str) -> None:
        self._call(lambda: self._release(keys=[PREFIX + "lease:" + lease], args=[owner]), 0)

    def get_status(self, status_id: str) -> bytes | None:
        body: Any = self._call(lambda: self.client.get(PREFIX + "status:" + status_id), None)
        return body if isinstance(body, bytes) else None

    def put_status(self, status_id: str, body: bytes) -> None:
        self._call(lambda: self.client.set(PREFIX + "status:" + status_id, body, px=600_000), None)

    def nbytes(self) -> int:
        """Bytes Redis reports in use (its whole memory, not only this cache's keys)."""
        empty: dict[str, Any] = {}
        info: Any = self._call(lambda: self.client.info("memory"), empty)
        return int(info.get("used_memory", 0)) if isinstance(info, dict) else 0

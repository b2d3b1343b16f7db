"""The result cache (docs/adr/0008-result-cache.md): whole answers keyed by what determines them
and served while they are at the current data version, PostHog's refresh modes, single flight
in-process and across servers (Redis), and per-sub-task partials so a refresh after a commit
recomputes only the sub-tasks whose files changed.

A service-level component below the query service: the query service asks it to serve each
query (`ResultCache.serve`) with a callback that runs the engine; the cache never calls an
engine itself and installs its partial store through the engine's seam
(eventlens.query.parallel.partials).
"""

from __future__ import annotations

from eventlens.cache.backends import Backend, MemoryBackend
from eventlens.cache.entry import CachedAnswer, QueryStatus
from eventlens.cache.key import ProjectSettings, answer_key
from eventlens.cache.modes import MODES, Mode, mode_of
from eventlens.cache.partials import Counting, MemoryPartials
from eventlens.cache.service import Request, ResultCache, Served
from eventlens.config import Settings
from eventlens.errors import InvalidInput

__all__ = [
    "MODES",
    "Backend",
    "CachedAnswer",
    "Counting",
    "MemoryBackend",
    "MemoryPartials",
    "Mode",
    "ProjectSettings",
    "QueryStatus",
    "Request",
    "ResultCache",
    "Served",
    "answer_key",
    "build_cache",
    "mode_of",
]

BACKENDS = ("memory", "redis", "off")


def build_cache(settings: Settings) -> ResultCache | None:
    """The cache `settings.cache_backend` asks for (None for "off"); InvalidInput for an
    unknown backend name (at startup)."""
    name = settings.cache_backend
    if name == "off":
        return None
    backend: Backend
    if name == "memory":
        backend = MemoryBackend(settings.cache_max_mb * 2**20)
    elif name == "redis":
        from eventlens.cache.redis_backend import RedisBackend  # redis-py only when asked for

        backend = RedisBackend(settings.cache_redis_url, ttl_s=settings.cache_ttl_seconds)
    else:
        raise InvalidInput(
            f"cache_backend must be one of {', '.join(BACKENDS)}, not {name!r}",
            field="cache_backend",
        )
    return ResultCache(
        backend,
        MemoryPartials(settings.cache_partials_mb * 2**20),
        refresh_workers=settings.cache_refresh_workers,
        refresh_queue=settings.cache_refresh_queue,
        lease_seconds=settings.cache_lease_seconds,
        lazy_seconds=settings.cache_lazy_seconds,
        refresh_timeout=settings.query_timeout,
    )

"""The partial-result seam: where a cache of per-sub-task partials plugs into the engine.

A sub-task's partial is a pure function of (kernel, plan-time params, the immutable files it
reads): Delta data files never change once written, so a partial keyed by those is valid for
every snapshot that gives the sub-task exactly those files. After a commit, only sub-tasks whose
files changed are recomputed; the others reuse their partials (Druid's per-segment cache). Person
merges, compaction and deletions write new files, so they change the key and recompute exactly
the affected sub-tasks.

The engine never imports a cache: whoever wants reuse (eventlens.cache) sets a `PartialStore`
as current around the run (`using`); without one every sub-task computes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields, is_dataclass
from typing import Any, Protocol

from eventlens.query.parallel.kernels import KernelParams
from eventlens.query.parallel.planner import SubTask

# Bumped when a kernel's partial changes shape or meaning: old partials must never be merged
# with new ones (a Redis-shared or long-lived store would otherwise mix them).
PARTIAL_FORMAT = 1
# Keys of a sub-task's delta base record (delta.Base: which partial is its newest, over which
# files; `chain` > 0 when a per-person delta made it). They share the store with partials, so
# stores that count reuse skip them, and count a base put with a chain as a delta refresh.
BASE_PREFIX = "base/"


class PartialStore(Protocol):
    """Partials by key. `get` returns a partial the caller may merge (never mutated by the
    merge: kernels' merges build new values); `put` may drop it (bounded stores)."""

    def get(self, key: str) -> Any | None: ...

    def put(self, key: str, partial: Any) -> None: ...


_CURRENT: ContextVar[PartialStore | None] = ContextVar("eventlens_partials", default=None)


def current() -> PartialStore | None:
    """The store the running query may reuse partials from (None: compute every sub-task)."""
    return _CURRENT.get()


@contextmanager
def using(store: PartialStore | None) -> Iterator[None]:
    """Make `store` current for the block (sub-task threads inherit it)."""
    token = _CURRENT.set(store)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _params_text(params: KernelParams) -> str:
    # The normalised query enters by its fingerprint (its repr holds the raw query); every other
    # field (buckets, windows, the second pass's kept values ...) by its repr, which is
    # deterministic for these frozen dataclasses of tuples, ints and datetimes.
    if not is_dataclass(params):
        return repr(params)
    parts = []
    for f in fields(params):
        value = getattr(params, f.name)
        fingerprint = getattr(value, "fingerprint", None)
        parts.append(f"{f.name}={fingerprint if isinstance(fingerprint, str) else repr(value)}")
    return ";".join(parts)


def params_text(params: KernelParams) -> str:
    """The text by which `params` enter a partial's key (also a delta base's key)."""
    return _params_text(params)


def task_key(
    kernel: str, params: KernelParams, task: SubTask, *, text: str | None = None
) -> str | None:
    """The key of `task`'s partial: kernel, params and the exact files it reads. None for a
    sub-task over in-memory rows (no immutable identity: never cached). `text`: the params'
    `params_text`, when the caller keys several sub-tasks of one plan."""
    source = task.source
    if source.table is not None:
        return None
    text = "\n".join(
        [
            f"partial/{PARTIAL_FORMAT}",
            kernel,
            _params_text(params) if text is None else text,
            "main:" + "|".join(source.paths),
            "history:" + "|".join(source.history_paths),
        ]
    )
    if getattr(getattr(params, "nq", None), "cohorts", ()):
        # Cohort membership reads every file of the sub-task's buckets (parallel/cohorts.py).
        text += "\nbuckets:" + "|".join(p for paths in source.buckets for p in paths)
    return hashlib.sha256(text.encode()).hexdigest()

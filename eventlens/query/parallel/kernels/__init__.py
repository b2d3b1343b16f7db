"""One kernel module per insight kind, all with the same four functions:

    prepare(nq, earliest_us) -> Params      plan-time constants (buckets, windows, LoadSpec `spec`)
    compute(params, frame) -> Partial        one partition (sub-task); pure, vectorised
    merge(partials) -> Partial               exact: partitions hold disjoint persons
    finish(params, merged, rerun) -> result  ranking, "other" folding, output shaping

`rerun(params)` executes a second pass over the same sub-tasks and returns its merged partial;
only trends uses it (folding breakdown values into "other" for distinct-person maths).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from eventlens.query.normalise import NormalisedQuery
from eventlens.query.parallel.frame import Frame


@dataclass(frozen=True)
class Kernel:
    name: str
    prepare: Callable[[NormalisedQuery, int | None], Any]
    compute: Callable[[Any, Frame], Any]
    merge: Callable[[list[Any]], Any]
    finish: Callable[[Any, Any, Callable[[Any], Any]], Any]


# One module per insight kind, all with the signature above.
KERNEL_MODULES = {
    "TrendsQuery": "trends",
    "FunnelsQuery": "funnels",
    "RetentionQuery": "retention",
    "StickinessQuery": "stickiness",
    "LifecycleQuery": "lifecycle",
}


def _kernel(module: ModuleType) -> Kernel:
    return Kernel(
        name=module.__name__.rsplit(".", 1)[-1],
        prepare=module.prepare,
        compute=module.compute,
        merge=module.merge,
        finish=module.finish,
    )


def kernel_for(kind: str) -> Kernel:
    """The kernel of a query kind ("TrendsQuery", ...)."""
    return _kernel(importlib.import_module(f"{__name__}.{KERNEL_MODULES[kind]}"))

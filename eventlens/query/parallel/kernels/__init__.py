"""One kernel module per insight kind, all with the same four functions:

    prepare(nq, earliest_us) -> Params      plan-time constants (buckets, windows, LoadSpec `spec`)
    compute(params, frame) -> Partial        one partition (sub-task); pure, vectorised
    merge(partials) -> Partial               exact: partitions hold disjoint persons
    finish(params, merged, rerun) -> result  ranking, "other" folding, output shaping

`rerun(params)` executes a second pass over the same sub-tasks and returns its merged partial;
only trends uses it (folding breakdown values into "other" for distinct-person maths).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from eventlens.query.kinds import kind
from eventlens.query.kinds import load as load_implementation
from eventlens.query.model import InsightQuery
from eventlens.query.normalise import NormalisedQuery

if TYPE_CHECKING:
    from eventlens.query.engines import InsightResult
    from eventlens.query.parallel.frame import Frame, LoadSpec

__all__ = ["AnyKernel", "Kernel", "KernelParams", "kernel_for"]


class KernelParams(Protocol):
    """What the planner needs of every kernel's plan-time parameters."""

    @property
    def spec(self) -> LoadSpec: ...


Q = TypeVar("Q", bound=InsightQuery)
P = TypeVar("P", bound=KernelParams)
T = TypeVar("T")


@dataclass(frozen=True)
class Kernel(Generic[Q, P, T]):
    """One insight kind's parallel implementation: query type Q, params P, partial T. Each
    kernel module defines `KERNEL`, named in the one registry of kinds (eventlens.query.kinds)."""

    name: str
    prepare: Callable[[NormalisedQuery[Q], int | None], P]
    compute: Callable[[P, Frame], T]
    merge: Callable[[list[T]], T]
    finish: Callable[[P, T, Callable[[P], T]], InsightResult]


# The engine handles kernels of every kind alike; each kernel's own functions are precisely typed.
AnyKernel = Kernel[Any, Any, Any]


@cache
def kernel_for(name: str) -> AnyKernel:
    """The kernel of a query kind ("TrendsQuery", ...)."""
    path = kind(name).parallel
    kernel = load_implementation(path)
    if not isinstance(kernel, Kernel):
        raise TypeError(f"{path} is not a Kernel")
    return kernel

"""What the load test's report is judged against: the SLOs' thresholds and objectives.

`Thresholds` is the small typed interface the judge needs. `from_slo_declaration` builds it from
the repository's SLO declaration (eventlens/observability/slo.py `load()`, whose object has
`capture_ack_threshold_seconds`, `query_latency_threshold_seconds` and `objective(name)`);
`default()` is that, and `--threshold-file` (a JSON object of `Thresholds` fields) or the
`--*-latency-ms` options override it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

from eventlens.errors import InvalidInput


@dataclass(frozen=True)
class Thresholds:
    """Latency SLIs: at least `*_latency_objective` of requests answered within
    `*_latency_s`. Availability SLIs: at least `*_availability` of requests not a 5xx (nor a
    refused connection or a timeout)."""

    capture_latency_s: float
    capture_latency_objective: float
    capture_availability: float
    query_latency_s: float
    query_latency_objective: float
    query_availability: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_s"):
                if not value > 0:
                    raise InvalidInput(f"{f.name} must be > 0 seconds, not {value}", field=f.name)
            elif not 0 < value <= 1:
                raise InvalidInput(f"{f.name} must be in (0, 1], not {value}", field=f.name)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class SLODeclaration(Protocol):
    """What the SLO declaration offers (eventlens.observability.slo.SLOFile)."""

    @property
    def capture_ack_threshold_seconds(self) -> float: ...
    @property
    def query_latency_threshold_seconds(self) -> float: ...
    def objective(self, name: str) -> float: ...


def from_slo_declaration(slos: SLODeclaration) -> Thresholds:
    """The thresholds of the repository's SLO declaration (names as in its slos.yaml)."""
    return Thresholds(
        capture_latency_s=slos.capture_ack_threshold_seconds,
        capture_latency_objective=slos.objective("capture-latency"),
        capture_availability=slos.objective("capture-availability"),
        query_latency_s=slos.query_latency_threshold_seconds,
        query_latency_objective=slos.objective("query-latency"),
        query_availability=slos.objective("query-availability"),
    )


def default() -> Thresholds:
    """The thresholds of the repository's SLO declaration (eventlens/observability/slos.yaml)."""
    from eventlens.observability import slo

    return from_slo_declaration(slo.load())


def from_file(path: Path, base: Thresholds | None = None) -> Thresholds:
    """`base` with the fields a JSON object in `path` sets; InvalidInput names a bad one."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"cannot read thresholds from {path}: {exc}", field="threshold_file"
        ) from None
    known = {f.name for f in fields(Thresholds)}
    if not isinstance(data, dict) or not set(data) <= known:
        raise InvalidInput(
            f"{path} must be a JSON object with keys among {', '.join(sorted(known))}",
            field="threshold_file",
        )
    return replace(default() if base is None else base, **{k: float(v) for k, v in data.items()})

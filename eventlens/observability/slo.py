"""The SLO declaration (`slos.yaml` next to this module), loaded and typed.

One file says what "healthy" means; the rules generator (`eventlens.observability.rules`),
the dashboard and the load test read it through `load()`, so a threshold is never written
twice. Durations are Prometheus durations ("5m", "1h") or seconds.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

SLO_FILE = Path(__file__).with_name("slos.yaml")

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> int:
    """Seconds of a Prometheus duration with one unit ("90s", "5m", "1h", "3d")."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"duration {text!r} is not <number><s|m|h|d|w>")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RatioSLI(_Strict):
    """Error events / all events: two label selectors on one counter."""

    kind: Literal["ratio"]
    metric: str
    total: str
    errors: str


class LatencySLI(_Strict):
    """Events slower than `threshold_seconds` / all events, from one histogram."""

    kind: Literal["latency"]
    metric: str  # the histogram's base name (without _bucket/_count)
    threshold_seconds: float = Field(gt=0)
    total: str = ""  # label selector of the valid events


class SLO(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    description: str
    objective: float = Field(gt=0, lt=1)
    sli: Annotated[RatioSLI | LatencySLI, Field(discriminator="kind")]

    @property
    def error_budget(self) -> float:
        """Share of events allowed to be bad over the window (1 - objective)."""
        return 1.0 - self.objective

    @property
    def threshold_seconds(self) -> float | None:
        return self.sli.threshold_seconds if isinstance(self.sli, LatencySLI) else None


class Symptoms(_Strict):
    ingest_stalled_lag_seconds: float = Field(gt=0)
    ingest_stalled_for: str
    crash_loop_restarts: int = Field(ge=1)
    crash_loop_window: str

    @field_validator("ingest_stalled_for", "crash_loop_window")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        duration_seconds(value)
        return value


class SLOFile(_Strict):
    version: Literal[1]
    service: str
    window_days: int = Field(ge=1, le=90)
    slos: tuple[SLO, ...]
    symptoms: Symptoms
    runbook_base_url: str

    def get(self, name: str) -> SLO:
        """The SLO called `name`; KeyError names the known ones."""
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(f"no SLO {name!r}; known: {', '.join(s.name for s in self.slos)}")

    # The thresholds other components judge against (the load test's pass/fail).
    @property
    def capture_ack_threshold_seconds(self) -> float:
        return _threshold(self.get("capture-latency"))

    @property
    def query_latency_threshold_seconds(self) -> float:
        return _threshold(self.get("query-latency"))

    @property
    def ingest_freshness_threshold_seconds(self) -> float:
        return _threshold(self.get("ingest-freshness"))

    def objective(self, name: str) -> float:
        return self.get(name).objective


def _threshold(slo: SLO) -> float:
    value = slo.threshold_seconds
    if value is None:
        raise KeyError(f"SLO {slo.name!r} has no latency threshold")
    return value


def parse(text: str) -> SLOFile:
    """Validate an SLO declaration (YAML text); pydantic's ValidationError says what is wrong."""
    return SLOFile.model_validate(yaml.safe_load(text))


@cache
def load(path: Path = SLO_FILE) -> SLOFile:
    """The SLO declaration shipped with EventLens (or the one at `path`)."""
    return parse(path.read_text())

"""Compare two engines' results for one query: a list of `Diff`s that point at exactly what differs.

Results are first put in a canonical tree (`canonical`) in which lists whose order carries no
meaning become objects keyed by what identifies an element, so the paths read like the result:

    trends / stickiness   series[<label>|<breakdown value>].data[<bucket>]
    lifecycle             series[<status>].data[<bucket>]
    funnels               steps[<order>].count, breakdown[<value>].steps[<order>].count
    retention             cohort[<date>].values[<k>]

Everything else is compared as JSON: objects by key, lists element by element. Numbers compare
numerically (1 == 1.0) within a relative tolerance (`math.isclose(rel_tol=tol, abs_tol=0)`); NaN
equals only NaN and an infinity only the infinity of the same sign; booleans, strings (labels,
breakdown values, dates) and null compare exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DEFAULT_TOLERANCE = 1e-9
_MISSING = "<missing>"


@dataclass(frozen=True)
class Diff:
    """One difference: `path` into the canonical result, the primary's value (`expected`) and the
    candidate's (`got`); `"<missing>"` when one side has no such element."""

    path: str
    expected: Any
    got: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "expected": self.expected, "got": self.got}


def compare(
    kind: str, expected: Any, got: Any, *, tolerance: float = DEFAULT_TOLERANCE
) -> list[Diff]:
    """Differences between `expected` (primary) and `got` (candidate) results of a query of
    `kind` (e.g. "TrendsQuery"); [] when they agree. `tolerance` is the relative float tolerance
    (>= 0). Never raises on odd shapes: an unexpected shape is compared as plain JSON."""
    out: list[Diff] = []
    _diff(canonical(kind, plain(expected)), canonical(kind, plain(got)), "", tolerance, out)
    return out


def plain(value: Any) -> Any:
    """`value` with numpy scalars/arrays and tuples turned into Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain(value.tolist())
    return value


def canonical(kind: str, result: Any) -> Any:
    """The result as a tree keyed by meaning (see the module docstring); unknown shapes as is."""
    if not isinstance(result, list):
        return result
    if kind in ("TrendsQuery", "StickinessQuery", "LifecycleQuery"):
        if not all(isinstance(s, dict) for s in result):
            return result
        return {"series": _keyed(result, _series_key, _series_body)}
    if kind == "FunnelsQuery":
        if result and all(isinstance(s, list) for s in result):
            # With a breakdown: one step list per breakdown value; ranking order is a display
            # choice, so key by the value.
            return {"breakdown": _keyed(result, _funnel_breakdown_key, _steps)}
        return _steps(result)
    if kind == "RetentionQuery" and all(isinstance(c, dict) for c in result):
        return {"cohort": _keyed(result, lambda c: str(c.get("date")), _cohort_body)}
    return result


def _keyed(items: list[Any], key: Any, body: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        k = key(item)
        if k in out:  # the same key twice (two series of one event): keep both, by position
            k = f"{k}#{i}"
        out[k] = body(item)
    return out


def _series_key(s: dict[str, Any]) -> str:
    if "status" in s:
        return str(s["status"])
    key = str(s.get("label"))
    if "breakdown_value" in s:
        key += f"|{s['breakdown_value']}"
    return key


def _series_body(s: dict[str, Any]) -> dict[str, Any]:
    body = dict(s)
    days, data = s.get("days"), s.get("data")
    if isinstance(days, list) and isinstance(data, list) and len(days) == len(data):
        body["data"] = {str(d): v for d, v in zip(days, data, strict=True)}
        body.pop("labels", None)  # derived from days; a difference shows up in days
    return body


def _funnel_breakdown_key(steps: list[Any]) -> str:
    first = steps[0] if steps and isinstance(steps[0], dict) else {}
    return str(first.get("breakdown_value"))


def _steps(steps: list[Any]) -> Any:
    if not all(isinstance(s, dict) for s in steps):
        return steps
    return {"steps": {str(s.get("order", i)): s for i, s in enumerate(steps)}}


def _cohort_body(c: dict[str, Any]) -> dict[str, Any]:
    body = dict(c)
    values = c.get("values")
    if isinstance(values, list):
        body["values"] = [
            v["count"] if isinstance(v, dict) and set(v) == {"count"} else v for v in values
        ]
    return body


# Keys whose values `canonical` turns into keyed objects: their children print as name[key].
_KEYED = frozenset({"series", "breakdown", "steps", "cohort", "data"})


def _diff(a: Any, b: Any, path: str, tol: float, out: list[Diff], keyed: bool = False) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            sub = f"{path}[{k}]" if keyed else (f"{path}.{k}" if path else k)
            if k not in b:
                out.append(Diff(sub, a[k], _MISSING))
            elif k not in a:
                out.append(Diff(sub, _MISSING, b[k]))
            else:
                _diff(a[k], b[k], sub, tol, out, keyed=not keyed and k in _KEYED)
        return
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            sub = f"{path}[{i}]"
            if i >= len(b):
                out.append(Diff(sub, a[i], _MISSING))
            elif i >= len(a):
                out.append(Diff(sub, _MISSING, b[i]))
            else:
                _diff(a[i], b[i], sub, tol, out)
        return
    if not values_equal(a, b, tol):
        out.append(Diff(path or "$", a, b))


def values_equal(a: Any, b: Any, tol: float = DEFAULT_TOLERANCE) -> bool:
    """Scalar equality: numbers within `tol` relative (NaN == NaN, inf only == same-sign inf),
    everything else (str, bool, None, containers) exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        if math.isinf(fa) or math.isinf(fb):
            return fa == fb
        return fa == fb or math.isclose(fa, fb, rel_tol=tol, abs_tol=0.0)
    return type(a) is type(b) and bool(a == b)

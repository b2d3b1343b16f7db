"""Paths rules both engines share (docs/semantics.md "Paths"): which events are path nodes and
what a node is called, how a session's nodes are cut by start point, end point and step limit,
the funnel-paths window of a person, the node keys actors select by, and the output rows.

The engines differ only in how they find sessions and count: the reference per person in plain
Python, the parallel kernel vectorised per partition. Every per-value rule (naming, cleaning,
grouping) is a function here, so both apply the very same one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventlens.errors import InvalidQuery
from eventlens.query.model import FunnelPathsFilter, PathsFilter, grouping_regex
from eventlens.query.regex import compile_pattern

# A session ends after 30 minutes without a path event (PostHog's paths split the same way).
SESSION_GAP_US = 30 * 60 * 1_000_000
PAGEVIEW = "$pageview"
SCREEN = "$screen"
CUSTOM = "custom_event"
ALL_TYPES = (PAGEVIEW, SCREEN, CUSTOM)
URL_KEY = "$current_url"
SCREEN_KEY = "$screen_name"
NO_BOUND = 2**62  # funnel bounds: "no limit" on either side, in µs


def event_types(pf: PathsFilter) -> frozenset[str]:
    """The event types paths are made of: `includeEventTypes`, or all three when empty/null."""
    return frozenset(pf.includeEventTypes or ALL_TYPES)


def read_event_names(pf: PathsFilter, funnel: bool) -> frozenset[str] | None:
    """The event names a paths query can look at; None (every event) when custom events are
    paths nodes or a funnel decides whose paths count."""
    types = event_types(pf)
    if funnel or CUSTOM in types:
        return None
    return frozenset(types)


def node_type(event: str, types: frozenset[str]) -> str | None:
    """PAGEVIEW / SCREEN / CUSTOM for an event name that makes path nodes under `types`, else
    None. A custom event is one whose name does not start with `$` (PostHog's rule)."""
    if event == PAGEVIEW:
        return PAGEVIEW if PAGEVIEW in types else None
    if event == SCREEN:
        return SCREEN if SCREEN in types else None
    if CUSTOM in types and not event.startswith("$"):
        return CUSTOM
    return None


def url_name(value: Any) -> str | None:
    """A pageview's raw node name: `$current_url` without trailing slashes ("/" stays "/").
    None (the event is no node) when the URL is missing, not a string or empty."""
    if not isinstance(value, str) or value == "":
        return None
    stripped = value.rstrip("/")
    return stripped if stripped else "/"


def screen_name(value: Any) -> str | None:
    """A screen's raw node name: `$screen_name`; None when missing, not a string or empty."""
    return value if isinstance(value, str) and value != "" else None


@dataclass
class Namer:
    """Raw node name -> final node name: the cleaning rules in order (every RE2 match replaced
    by the alias, literally), then the first grouping pattern that matches the whole cleaned
    name replaces it. Memoised per distinct raw name."""

    pf: PathsFilter

    def __post_init__(self) -> None:
        rules = self.pf.localPathCleaningFilters or []
        self._rules = [
            (compile_pattern(r.regex or "", "pathsFilter.localPathCleaningFilters"), r.alias or "")
            for r in rules
        ]
        self._groups = [
            (compile_pattern(grouping_regex(g), "pathsFilter.pathGroupings"), g)
            for g in self.pf.pathGroupings
        ]
        self._memo: dict[str, str] = {}

    def __call__(self, raw: str) -> str:
        done = self._memo.get(raw)
        if done is not None:
            return done
        name = raw
        for regex, alias in self._rules:
            name = regex.sub(lambda _m, a=alias: a, name)
        for regex, pattern in self._groups:
            if regex.fullmatch(name):
                name = pattern
                break
        self._memo[raw] = name
        return name


def cut_session(names: Sequence[str], pf: PathsFilter) -> tuple[int, int] | None:
    """The part of one session's collapsed node names that is a path: (first, last + 1), or
    None when the session makes no path. Rules:
    - startPoint: from its first occurrence (sessions without it make none);
    - endPoint: to its first occurrence (at or after the start; sessions without it: none);
    - stepLimit: with a start point or neither, the first stepLimit nodes; with only an end
      point, the last stepLimit nodes (so the path still ends there); with both, a path longer
      than stepLimit is dropped (it does not get from start to end within the limit)."""
    lo, hi = 0, len(names)
    start, end = pf.startPoint, pf.endPoint
    if start is not None:
        try:
            lo = names.index(start)
        except ValueError:
            return None
    if end is not None:
        try:
            hi = names.index(end, lo) + 1
        except ValueError:
            return None
    limit = pf.stepLimit
    if hi - lo > limit:
        if start is not None and end is not None:
            return None
        if end is not None:
            lo = hi - limit
        else:
            hi = lo + limit
    return lo, hi


def funnel_bounds(
    fp: FunnelPathsFilter, step_ts: Sequence[int], window_us: int
) -> tuple[int, int] | None:
    """The inclusive time window (µs) of a person's path events under funnel paths, from the
    times of the funnel steps the person's best attempt reached (`step_ts[k]` = step k + 1);
    None when the person is not in the selected funnel group. funnelStep N > 0: persons who
    reached step N; N < 0: persons who reached step |N| - 1 but not |N| (dropped off).
    - after: from step N (dropped: from the last step reached) on;
    - before: up to step N (dropped: up to the last step reached);
    - between: from step N - 1 to step N (dropped: from the last step reached to the end of
      the conversion window, counted from step 1)."""
    n = fp.funnelStep
    level = len(step_ts)
    kind = fp.funnelPathType
    if n > 0:
        if level < n:
            return None
        at = step_ts[n - 1]
        if kind == "funnel_path_after_step":
            return at, NO_BOUND
        if kind == "funnel_path_before_step":
            return -NO_BOUND, at
        return step_ts[n - 2], at
    m = -n
    if level != m - 1:
        return None
    last = step_ts[m - 2]
    if kind == "funnel_path_after_step":
        return last, NO_BOUND
    if kind == "funnel_path_before_step":
        return -NO_BOUND, last
    return last, step_ts[0] + window_us


def node_key(step: int, name: str) -> str:
    """PostHog's node naming: `<step>_<name>`, steps from 1."""
    return f"{step}_{name}"


def parse_node_key(key: str, field: str) -> tuple[int, str]:
    """(step, name) of a node key like "2_/pricing"; InvalidQuery naming `field` otherwise."""
    step, sep, name = key.partition("_")
    if not sep or not step.isdigit() or int(step) < 1:
        raise InvalidQuery(
            f"{field}: a node key is <step>_<name> with step >= 1, e.g. '1_/home'; got "
            f"{key[:100]!r}",
            field=field,
        )
    return int(step), name


@dataclass
class EdgeStats:
    """One edge (step k -> k + 1, source name, target name) summed over persons: `persons`
    who made the transition at that step (each once), `transitions` (each session's once) and
    the sum of their times in µs. Additive across partitions (persons never span two)."""

    persons: int = 0
    transitions: int = 0
    time_us: int = 0

    def add(self, other: EdgeStats) -> EdgeStats:
        return EdgeStats(
            self.persons + other.persons,
            self.transitions + other.transitions,
            self.time_us + other.time_us,
        )


EdgeKey = tuple[int, str, str]  # (source step, source name, target name)
NodeKey = tuple[int, str]  # (step, name)


def merge_counts(
    parts: Iterable[tuple[Mapping[EdgeKey, EdgeStats], Mapping[NodeKey, int]]],
) -> tuple[dict[EdgeKey, EdgeStats], dict[NodeKey, int]]:
    """Sum per-partition edge stats and drop-off counts (exact: disjoint persons)."""
    edges: dict[EdgeKey, EdgeStats] = {}
    drops: dict[NodeKey, int] = {}
    for part_edges, part_drops in parts:
        for key, stats in part_edges.items():
            have = edges.get(key)
            edges[key] = stats if have is None else have.add(stats)
        for node, count in part_drops.items():
            drops[node] = drops.get(node, 0) + count
    return edges, drops


def edge_rows(
    pf: PathsFilter, edges: Mapping[EdgeKey, EdgeStats], dropoffs: Mapping[NodeKey, int]
) -> list[dict[str, Any]]:
    """The answer: edges with minEdgeWeight <= value <= maxEdgeWeight, ordered by value
    (descending), then source and target; the first edgeLimit. Each row: `source`, `target`
    (node keys), `value` (unique persons), `average_conversion_time` (ms, mean over the
    transitions), `target_dropoffs` (unique persons whose path ends at the target node)."""
    rows = []
    for (step, source, target), stats in edges.items():
        if pf.minEdgeWeight is not None and stats.persons < pf.minEdgeWeight:
            continue
        if pf.maxEdgeWeight is not None and stats.persons > pf.maxEdgeWeight:
            continue
        rows.append(
            {
                "source": node_key(step, source),
                "target": node_key(step + 1, target),
                "value": stats.persons,
                "average_conversion_time": (
                    stats.time_us / stats.transitions / 1000 if stats.transitions else None
                ),
                "target_dropoffs": dropoffs.get((step + 1, target), 0),
            }
        )
    rows.sort(key=lambda r: (-r["value"], r["source"], r["target"]))
    return rows[: pf.edgeLimit]


@dataclass(frozen=True)
class ActorSelector:
    """Which persons `path_actors` returns (PostHog's pathStartKey / pathEndKey /
    pathDropoffKey): persons with an edge from `start` (and/or into `end`), and/or whose path
    ends at `dropoff`. Every given key must hold (for some edge / path of the person)."""

    start: NodeKey | None
    end: NodeKey | None
    dropoff: NodeKey | None

    def edge_matches(self, step: int, source: str, target: str) -> bool:
        return (self.start is None or self.start == (step, source)) and (
            self.end is None or self.end == (step + 1, target)
        )


def actor_selector(pf: PathsFilter) -> ActorSelector:
    """The selector from the query's pathsFilter; InvalidQuery when no key is given or one is
    malformed."""
    keys = {
        "pathStartKey": pf.pathStartKey,
        "pathEndKey": pf.pathEndKey,
        "pathDropoffKey": pf.pathDropoffKey,
    }
    parsed = {
        name: None if key is None else parse_node_key(key, f"pathsFilter.{name}")
        for name, key in keys.items()
    }
    if all(v is None for v in parsed.values()):
        raise InvalidQuery(
            "pathsFilter.pathStartKey: persons of a path need pathStartKey, pathEndKey or "
            "pathDropoffKey",
            field="pathsFilter.pathStartKey",
        )
    return ActorSelector(parsed["pathStartKey"], parsed["pathEndKey"], parsed["pathDropoffKey"])

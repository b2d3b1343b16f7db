"""PathsQuery validation, the project's path cleaning rules in normalise, and the naming rules
(semantics.paths) on cases the golden fixtures do not spell out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eventlens.errors import InvalidQuery
from eventlens.query import PathsQuery, normalise, parse_query
from eventlens.query.model import PathsFilter
from eventlens.query.semantics.paths import Namer, cut_session, url_name

NOW = datetime(2024, 2, 1, tzinfo=UTC)
FUNNEL = {"kind": "FunnelsQuery", "series": [{"event": "a"}, {"event": "b"}]}
PROJECT_RULES = [{"alias": "/user/:id", "regex": "/user/\\d+"}]


def _paths(**pf: Any) -> dict[str, Any]:
    return {"kind": "PathsQuery", "pathsFilter": pf}


def test_defaults() -> None:
    q = parse_query({"kind": "PathsQuery"})
    assert isinstance(q, PathsQuery)
    assert (q.pathsFilter.stepLimit, q.pathsFilter.edgeLimit) == (5, 50)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (_paths(stepLimit=1), "pathsFilter.stepLimit"),
        (_paths(edgeLimit=0), "pathsFilter.edgeLimit"),
        (_paths(includeEventTypes=["$autocapture"]), "pathsFilter.includeEventTypes[0]"),
        (_paths(pathsHogQLExpression="event"), "pathsFilter.pathsHogQLExpression"),
        (
            _paths(localPathCleaningFilters=[{"alias": "x"}]),
            "pathsFilter.localPathCleaningFilters[0].regex",
        ),
        (_paths(colour=1), "pathsFilter.colour"),
        (
            {
                **_paths(),
                "funnelPathsFilter": {
                    "funnelPathType": "funnel_path_after_step",
                    "funnelStep": -1,
                    "funnelSource": FUNNEL,
                },
            },
            "funnelPathsFilter.funnelStep",
        ),
        (
            {
                **_paths(),
                "funnelPathsFilter": {
                    "funnelPathType": "funnel_path_between_steps",
                    "funnelStep": 1,
                    "funnelSource": FUNNEL,
                },
            },
            "funnelPathsFilter.funnelStep",
        ),
        (
            {
                **_paths(),
                "funnelPathsFilter": {
                    "funnelPathType": "funnel_path_after_step",
                    "funnelStep": 1,
                    "funnelSource": {**FUNNEL, "breakdownFilter": {"breakdown": "$browser"}},
                },
            },
            "funnelPathsFilter.funnelSource.breakdownFilter",
        ),
        (
            {
                **_paths(),
                "dateRange": {"date_from": "-7d"},
                "funnelPathsFilter": {
                    "funnelPathType": "funnel_path_after_step",
                    "funnelStep": 1,
                    "funnelSource": {**FUNNEL, "dateRange": {"date_from": "-30d"}},
                },
            },
            "funnelPathsFilter.funnelSource.dateRange",
        ),
        (
            {
                **_paths(),
                "funnelPathsFilter": {
                    "funnelPathType": "funnel_path_after_step",
                    "funnelStep": 1,
                    "funnelSource": {
                        **FUNNEL,
                        "properties": [{"key": "k", "value": "(", "operator": "regex"}],
                    },
                },
            },
            "funnelPathsFilter.funnelSource.properties[0].value",
        ),
    ],
)
def test_bad_paths_input_names_the_field(query: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_query(query)
    assert info.value.field == field, info.value.message


def test_project_rules_come_first_with_path_replacements_only() -> None:
    local = [{"alias": "L", "regex": "x"}]
    on = normalise(
        parse_query(_paths(pathReplacements=True, localPathCleaningFilters=local)),
        now=NOW,
        path_cleaning_filters=PROJECT_RULES,
    )
    assert isinstance(on.query, PathsQuery)
    rules = on.query.pathsFilter.localPathCleaningFilters or []
    assert [(r.alias, r.regex) for r in rules] == [("/user/:id", "/user/\\d+"), ("L", "x")]
    off = normalise(
        parse_query(_paths(localPathCleaningFilters=local)),
        now=NOW,
        path_cleaning_filters=PROJECT_RULES,
    )
    assert isinstance(off.query, PathsQuery)
    assert len(off.query.pathsFilter.localPathCleaningFilters or []) == 1
    # The rules are part of the fingerprint, so of the result and partial cache keys.
    plain = normalise(
        parse_query(_paths(pathReplacements=True, localPathCleaningFilters=local)), now=NOW
    )
    assert plain.answer_fingerprint() != on.answer_fingerprint()


def test_the_funnel_source_gets_the_test_account_filters_it_asks_for() -> None:
    internal = [{"key": "email", "value": "@x.com", "operator": "not_icontains", "type": "person"}]
    query = {
        **_paths(),
        "funnelPathsFilter": {
            "funnelPathType": "funnel_path_after_step",
            "funnelStep": 1,
            "funnelSource": {**FUNNEL, "filterTestAccounts": True},
        },
    }
    nq = normalise(parse_query(query), now=NOW, test_account_filters=internal)
    assert isinstance(nq.query, PathsQuery) and nq.query.funnelPathsFilter is not None
    assert nq.query.properties == []  # the paths query itself did not ask
    source = nq.query.funnelPathsFilter.funnelSource
    assert source.properties != []


def test_names_cleaning_is_literal_and_groupings_escape_regex_characters() -> None:
    namer = Namer(
        PathsFilter(
            localPathCleaningFilters=[{"alias": "\\1", "regex": "(\\d+)"}],  # type: ignore[list-item]
            pathGroupings=["/a.b/*"],
        )
    )
    assert namer("/x/12") == "/x/\\1"  # the alias is literal text, no back-reference
    assert namer("/a.b/c") == "/a.b/*"
    assert namer("/axb/c") == "/axb/c"  # `.` in a grouping is a dot
    assert url_name("/") == "/" and url_name("///") == "/" and url_name("/a//") == "/a"
    assert url_name("") is None and url_name(3) is None


def test_cut_session_rules() -> None:
    pf = PathsFilter(endPoint="c", stepLimit=2)
    assert cut_session(["a", "b", "c", "c"], pf) == (1, 3)  # last two nodes up to the first c
    assert cut_session(["a", "b"], pf) is None
    both = PathsFilter(startPoint="b", endPoint="a", stepLimit=3)
    assert cut_session(["a", "b", "a"], both) == (1, 3)  # the end counts at or after the start
    assert cut_session(["a", "b", "c", "d", "a"], both) is None  # 4 nodes b..a: too long

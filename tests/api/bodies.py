"""Query bodies the API tests share: a 7-day trend and a two-step funnel."""

from __future__ import annotations

from typing import Any

TRENDS: dict[str, Any] = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-7d"},
}
FUNNEL: dict[str, Any] = {
    "kind": "FunnelsQuery",
    "series": [
        {"kind": "EventsNode", "event": "$pageview"},
        {"kind": "EventsNode", "event": "signup"},
    ],
    "dateRange": {"date_from": "-7d"},
}

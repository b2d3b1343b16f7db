"""`GET /api/shadow/report`: the shadow-mode report, scoped to the caller's API key.

Auth: any valid API key (`Authorization: Bearer`, 401 otherwise), and the report covers only the
projects that key can read: comparisons, discrepancy records and the verdict are computed over
those projects alone, so one key learns nothing about another project's queries. The full,
cross-project report is `eventlens shadow report` on the server (file access is the authority).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from eventlens.accounts.policy import Permission, Principal
from eventlens.config import Settings
from eventlens.shadow.report import Policy, build_report, parse_since
from eventlens.shadow.store import ShadowStore
from eventlens.web.auth import any_principal, visible_projects
from eventlens.web.deps import settings_of, shadow_store

router = APIRouter(prefix="/api/shadow", tags=["shadow"])


@router.get("/report")
def shadow_report(
    request: Request,
    principal: Annotated[Principal, Depends(any_principal())],
    store: Annotated[ShadowStore, Depends(shadow_store)],
    settings: Annotated[Settings, Depends(settings_of)],
    since: Annotated[str, Query(description="Window: 90s, 30m, 12h, 7d, 2w, or all.")] = "7d",
    primary: Annotated[str | None, Query(description="Engine pair (default: latest).")] = None,
    candidate: Annotated[str | None, Query()] = None,
) -> Any:
    """Match rate, outcomes, mismatches by kind and diff location, p50/p99 latency of both
    engines and the cut-over verdict, over this key's projects. 400 for a bad `since`."""
    return build_report(
        store,
        since_s=None if since == "all" else parse_since(since),
        policy=Policy(min_days=settings.shadow_min_days, min_queries=settings.shadow_min_queries),
        projects={p.id for p in visible_projects(request, principal, Permission.QUERY_READ)},
        primary=primary,
        candidate=candidate,
    )

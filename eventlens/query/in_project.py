"""A query normalised in its project: the one place a project's settings reach `normalise`.

Every answer-changing setting of a project (timezone, week start, test-account filters, path
cleaning rules, its cohorts) is read here, so the query service, the actors service, saved
insights' validation and `eventlens explain` give one query one normalised form (one
fingerprint, one cache key).
"""

from __future__ import annotations

from datetime import datetime

from eventlens.projects.cohorts import CohortStore
from eventlens.projects.store import Project
from eventlens.query.cohort_service import lookup_for
from eventlens.query.model import InsightQuery
from eventlens.query.normalise import NormalisedQuery, normalise

__all__ = ["normalise_in_project"]


def normalise_in_project(
    parsed: InsightQuery, project: Project, cohorts: CohortStore, now: datetime
) -> NormalisedQuery:
    """`parsed` normalised with `project`'s settings, relative dates and cohort windows
    resolved at `now` (an aware datetime). InvalidQuery (naming the field) as `normalise`,
    e.g. for a cohort id the project does not have."""
    return normalise(
        parsed,
        timezone=project.timezone,
        week_start=project.week_start,
        now=now,
        test_account_filters=project.test_account_filters,
        cohorts=lookup_for(cohorts, project, now),
        path_cleaning_filters=project.path_cleaning_filters,
    )

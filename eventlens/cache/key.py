"""The result cache's key: everything that determines an answer, and nothing else.

    answer key = sha256(cache format, engine semantics version, project id, engine,
                        the project's answer-affecting settings (timezone, week start,
                        test-account filters), the normalised query's answer fingerprint)

The normalised query has its relative dates resolved to the bucket boundaries they mean
(`-7d` asked twice on one day is one key) and presentation-only fields left out
(`NormalisedQuery.answer_fingerprint`). The data version is not part of this key: one entry per
answer key holds the newest answer with the version it was computed at, so a request at that
version is a hit and an older one is an out-of-date answer that async modes may serve.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import eventlens
from eventlens.query.normalise import NormalisedQuery

# Bumped when an engine's answers change meaning (a semantics fix): every cached answer computed
# under the old rules becomes unreachable. The package version is part of the key too, so an
# upgrade never serves answers of the previous release.
SEMANTICS_VERSION = 1
CACHE_FORMAT = 1


@dataclass(frozen=True)
class ProjectSettings:
    """The project settings that change answers. Test-account filters are already ANDed into a
    normalised query that sets filterTestAccounts (so they are in its fingerprint); they are
    also keyed here, as JSON, for such queries, so the key says what the answer depends on."""

    project_id: int
    timezone: str
    week_start: int
    test_account_filters: tuple[str, ...] = ()


def answer_key(project: ProjectSettings, engine: str, query: NormalisedQuery) -> str:
    """The cache key of `query`'s answer on `project` by `engine` (hex)."""
    text = "\n".join(
        [
            f"eventlens-answer/{CACHE_FORMAT}",
            f"semantics/{SEMANTICS_VERSION}/{eventlens.__version__}",
            f"project/{project.project_id}",
            f"calendar/{project.timezone}/{project.week_start}",
            "test-accounts/" + "|".join(project.test_account_filters),
            f"engine/{engine}",
            query.answer_fingerprint(),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()

"""Where shadow mode attaches to the query service: as one of its observers.

`build_query_service` is the one function that builds a QueryService with the observers the
settings ask for; every place that serves queries (the API, `eventlens query`, the shadow
benchmark) builds its service here, so shadow mode is wired in one place. The query package does
not know shadow mode exists (shadow imports query, never the reverse).
"""

from __future__ import annotations

from eventlens.config import Settings
from eventlens.projects.store import MetadataStore
from eventlens.query.observers import QueryObserver
from eventlens.query.service import DEFAULT_ENGINE, QueryService
from eventlens.shadow.runner import ShadowRunner


def query_observers(settings: Settings) -> list[QueryObserver]:
    """The observers `settings` ask for: shadow mode's runner when `shadow_candidate` is set.
    InvalidQuery for an unknown engine name (fail at startup, not on the first query)."""
    runner = ShadowRunner.from_settings(settings, default_primary=DEFAULT_ENGINE)
    return [runner] if runner is not None else []


def build_query_service(settings: Settings, metadata: MetadataStore) -> QueryService:
    """A QueryService with the observers `settings` ask for (see `query_observers`)."""
    return QueryService(settings, metadata, observers=query_observers(settings))


def shadow_of(service: QueryService) -> ShadowRunner | None:
    """The shadow runner observing `service`, or None when shadow mode is off."""
    for observer in service.observers:
        if isinstance(observer, ShadowRunner):
            return observer
    return None

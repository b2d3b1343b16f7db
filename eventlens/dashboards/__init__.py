"""Saved insights and dashboards (the web dashboard's state), kept in the metadata database."""

from eventlens.dashboards.store import Dashboard, DashboardStore, SavedInsight

# The public surface: these names, and the module `store`.
__all__ = ["Dashboard", "DashboardStore", "SavedInsight", "store"]

"""Saved insights and dashboards (the web dashboard's state), kept in the metadata database."""

from eventlens.dashboards.store import Dashboard, DashboardStore, SavedInsight

__all__ = ["Dashboard", "DashboardStore", "SavedInsight"]

"""EventLens: self-hosted product analytics (capture -> ingest -> storage -> query -> web)."""

__version__ = "0.1.0"

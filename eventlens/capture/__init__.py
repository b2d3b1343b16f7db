"""Capture: the wire formats (PostHog, Segment; gzip/base64/form), validation and the service that
turns a request into one durable ingest-log record (docs/capture.md). Knows nothing of storage."""

# The public surface: the modules other components may import.
__all__ = ["decode", "fields", "import_rows", "model", "posthog", "replay", "segment", "service"]

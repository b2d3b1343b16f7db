"""Project metadata (name, timezone, public token, API-key hashes) behind `MetadataStore`."""

# The public surface: the modules other components may import.
__all__ = ["cohorts", "store"]

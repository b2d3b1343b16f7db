"""Identity: distinct_id -> person, $identify/$create_alias, person properties, merges and the
rewrite job that moves merged persons' events (docs/adr/0002)."""

# The public surface: the modules other components may import.
__all__ = ["directory", "merges", "model"]

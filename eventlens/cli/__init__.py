"""The `eventlens` command line: thin commands over the services (entry point `main`)."""

# The public surface: the modules other components may import.
__all__ = ["main"]

"""The web layer: the ASGI app (`app`), FastAPI dependencies (`deps`), API-key auth (`auth`), the
capture routes, the JSON API (`api`) and the dashboard. Thin: parse, call a service, map errors."""

# The public surface: the modules other components may import.
__all__ = ["app"]

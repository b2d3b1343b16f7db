"""The JSON API (`/api/...`): projects and insight queries, authenticated by API key."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from eventlens.web.api.routes import router
from eventlens.web.api.validation import handle_validation_error

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the API routes and turn request validation errors into our 400 shape."""
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, handle_validation_error)

"""The web dashboard: the single page at `/`, its static files at `/static/`, and the security
headers every page and asset gets.

The page is a static shell (eventlens/web/static/index.html) whose ES modules call the JSON API
with the API key the user typed (kept in sessionStorage, sent as a Bearer header, never put in
a URL). Routing is in the URL fragment (`#/p/1/insight?q=...`), so the server has one page.

Headers: a CSP that allows only this origin's scripts and styles (no inline code, no eval, no
CDN), `frame-ancestors 'none'` (no clickjacking), `nosniff`, and no referrer (a shared insight
link carries the query in its fragment; nothing should leak it further).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith("/static/") or path == "/favicon.ico"


def install(app: FastAPI) -> None:
    """Serve the dashboard at `/` and `/static/`, with SECURITY_HEADERS on those responses.

    /docs (Swagger UI, served by FastAPI with inline scripts) keeps FastAPI's own headers.
    """

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if _is_page(request.url.path):
            response.headers.update(SECURITY_HEADERS)
            # Revalidate (ETag) rather than cache: a new release's page must not pair with
            # old cached modules.
            response.headers.setdefault("Cache-Control", "no-cache")
        return response

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

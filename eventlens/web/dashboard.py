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

from pathlib import Path

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class PageSecurityHeaders:
    """Pure ASGI middleware adding SECURITY_HEADERS to dashboard pages only.

    Not `@app.middleware("http")`: that wraps every response in BaseHTTPMiddleware's streams
    and cost the capture hot path more than half its single-event throughput; this one looks at
    `scope["path"]` and passes every other request through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(SECURITY_HEADERS)
                # Revalidate (ETag) rather than cache: a new release's page must not pair with
                # old cached modules.
                headers.setdefault("Cache-Control", "no-cache")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Serve the dashboard at `/` and `/static/`, with SECURITY_HEADERS on those responses.

    /docs (Swagger UI, served by FastAPI with inline scripts) keeps FastAPI's own headers.
    """

    app.add_middleware(PageSecurityHeaders)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

"""What posthog-js asks of its host besides capture: its own bundle, remote config and /decide.

PostHog's standard HTML snippet loads `{api_host}/static/array.js`, so a site that points
`api_host` at EventLens needs the SDK served from here. The files are posthog-js's own `dist/`
files, vendored unchanged from the npm package (eventlens/web/static/vendor/posthog-js-<ver>/,
with its licence), at the paths the snippet, its pinned forms and the SDK's lazy loader use:
`/static/<file>`, `/static/<ver>/<file>` (`strict_script_versioning`) and `/static/<major>/<file>`.
posthog-js loads `surveys.js` whenever remote config arrives, even with surveys off (it then
renders nothing), so that lazy file is served too.

Remote config is what PostHog's RemoteConfig answers, with EventLens's truth in it: no feature
flags, no session replay, surveys, heatmaps or site apps. Unknown tokens get PostHog's answers:
404 for an unknown token, 400 for one that cannot be a token. `/decide` (the older SDKs' call)
answers like `/flags`: an empty flag set for any token, since there is nothing to disclose.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from eventlens.errors import InvalidInput, NotFound
from eventlens.web.deps import capture_service

POSTHOG_JS_VERSION = "1.449.2"
VENDOR_DIR = Path(__file__).parent / "static" / "vendor" / f"posthog-js-{POSTHOG_JS_VERSION}"
SUPPORTED_COMPRESSION = ["gzip-js", "base64"]
# PostHog's own token check in its remote-config view (tokens are `phc_...` or older random
# strings with `_` and `-`); anything else cannot name a project.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_JS = "application/javascript; charset=utf-8"
# An exact-version path never changes content; the unversioned and major paths move on upgrade.
_IMMUTABLE = "public, max-age=31536000, immutable"
_SHORT = "public, max-age=3600"


def sdk_files() -> tuple[str, ...]:
    """The vendored posthog-js file names (`array.js`, ...), as served under `/static/`."""
    return tuple(sorted(p.name for p in VENDOR_DIR.glob("*.js")))


def sdk_paths() -> tuple[str, ...]:
    """The route paths of the SDK files: `/static/<file>.js` and its pinned forms."""
    major = POSTHOG_JS_VERSION.split(".", 1)[0]
    # Only these prefixes: a `{version}` parameter would shadow the dashboard's /static/js/.
    return tuple(
        f"{prefix}/{{name}}.js"
        for prefix in ("/static", f"/static/{POSTHOG_JS_VERSION}", f"/static/{major}")
    )


_FILES = frozenset(sdk_files())


async def sdk_asset(request: Request) -> Response:
    """One vendored posthog-js file; `?v=` (the lazy loader's cache buster) is ignored.

    A file posthog-js has but EventLens does not serve (session replay's recorder, ...) is a
    JSON 404 that names it, with CORS, so the browser reports the 404 and not a CORS failure.
    """
    name = f"{request.path_params['name']}.js"
    if name not in _FILES:
        raise NotFound(
            f"posthog-js {POSTHOG_JS_VERSION} file {name} is not served by EventLens "
            f"(served: {', '.join(sorted(_FILES))})",
            field="path",
        )
    exact = request.scope["path"].startswith(f"/static/{POSTHOG_JS_VERSION}/")
    return FileResponse(
        VENDOR_DIR / name,
        media_type=_JS,
        headers={"Cache-Control": _IMMUTABLE if exact else _SHORT},
    )


def _project_token(request: Request) -> str:
    token = str(request.path_params["token"])
    if not _TOKEN.fullmatch(token):
        raise InvalidInput(
            "not a project token: 1 to 200 characters of letters, digits, '_' and '-'",
            field="token",
        )
    if capture_service(request).tokens.lookup(token) is None:
        shown = token if len(token) <= 16 else token[:12] + "..."
        raise NotFound(f"unknown project token {shown!r}", field="token")
    return token


def remote_config(token: str) -> dict[str, Any]:
    """The remote config of a project, in PostHog's RemoteConfig shape.

    Every feature EventLens has no endpoint for is off, so posthog-js never loads its bundle
    or posts to a path that would 404 (session replay's `/s/`, surveys, site apps...).
    """
    return {
        "token": token,
        "supportedCompression": SUPPORTED_COMPRESSION,
        "hasFeatureFlags": False,
        "captureDeadClicks": False,
        "capturePerformance": False,
        "autocapture_opt_out": False,
        "autocaptureExceptions": False,
        "analytics": {"endpoint": "/i/v0/e/"},
        "elementsChainAsString": True,
        "errorTracking": {"autocaptureExceptions": False, "suppressionRules": []},
        "logs": {"captureConsoleLogs": False},
        "sessionRecording": False,
        "heatmaps": False,
        "conversations": False,
        "surveys": False,
        "productTours": False,
        "defaultIdentifiedOnly": True,
        "siteApps": [],
    }


async def array_config(request: Request) -> Response:
    """`GET /array/{token}/config`: the remote config as JSON."""
    body = orjson.dumps(remote_config(_project_token(request)))
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})


async def array_config_js(request: Request) -> Response:
    """`GET /array/{token}/config.js`: a script that sets `window._POSTHOG_REMOTE_CONFIG[token]`,
    which posthog-js's lazy loader reads after loading it."""
    token = _project_token(request)
    config = orjson.dumps(remote_config(token)).decode()
    # The token is [A-Za-z0-9_-] (checked above) and the config is our own JSON: both are safe
    # to place in a script verbatim.
    script = (
        "(function() {\n"
        "  window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};\n"
        f"  window._POSTHOG_REMOTE_CONFIG['{token}'] = {{config: {config}, siteApps: []}};\n"
        "})();\n"
    )
    return Response(script, media_type=_JS, headers={"Cache-Control": "no-cache"})


def _version(request: Request) -> int:
    v = request.query_params.get("v", "1")
    return int(v) if v.isdigit() else 1


async def decide(request: Request) -> Response:
    """`/decide/?v=N`: what older posthog-js asks at load, flags and config in one answer.

    The body (token, distinct id) is not read: with no feature flags the answer is the same
    for everyone, as `/flags` does. v1 lists enabled flags; v2+ maps them; v4 adds `flags`.
    """
    v = _version(request)
    config = remote_config("")
    del config["token"]
    body: dict[str, Any] = {
        **config,
        "config": {"enable_collect_everything": True},
        "toolbarParams": {},
        "isAuthenticated": False,
        "featureFlags": {} if v >= 2 else [],
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
    }
    if v >= 4:
        body["flags"] = {}
    return Response(orjson.dumps(body), media_type="application/json")

"""posthog-js end to end: PostHog's standard HTML snippet in Chromium, pointed at EventLens.

A customer's page (its own loopback origin, so every call to EventLens is cross-origin, as on a
real site) holds the snippet exactly as PostHog's docs give it; only the token and `api_host`
are filled in, plus `opt_out_useragent_filter: true` in the init options: headless Chromium's
user agent says "HeadlessChrome", which posthog-js drops as a bot without it. The SDK is the
one EventLens serves (/static/array.js); it loads its remote config from EventLens and sends
its events there. What it sent must land in the event table, and the page must log no error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Request, Response

from eventlens.config import Settings
from eventlens.projects.store import SqliteMetadataStore
from eventlens.web.sdk_assets import POSTHOG_JS_VERSION
from tests.support.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"

# PostHog's standard snippet, verbatim from its web installation docs; the test fills in only
# the two placeholders of the init call below it.
SNIPPET = (
    "!function(t,e){var o,n,p,r;e.__SV||(window.posthog&&window.posthog.__loaded)||"
    '(window.posthog=e,e._i=[],e.init=function(i,s,a){function g(t,e){var o=e.split(".");'
    "2==o.length&&(t=t[o[0]],e=o[1]),t[e]=function(){t.push([e].concat(Array.prototype.slice."
    'call(arguments,0)))}}p||((p=t.createElement("script")).type="text/javascript",'
    'p.crossOrigin="anonymous",p.async=!0,p.src=s.api_host.replace(".i.posthog.com",'
    '"-assets.i.posthog.com")+"/static/array.js",p.onerror=function(){p=null},'
    '(r=t.getElementsByTagName("script")[0]).parentNode.insertBefore(p,r));var u=e;'
    'for(void 0!==a?u=e[a]=[]:a="posthog",u.people=u.people||[],u.toString=function(t){'
    'var e="posthog";return"posthog"!==a&&(e+="."+a),t||(e+=" (stub)"),e},'
    'u.people.toString=function(){return u.toString(1)+".people (stub)"},'
    'o="init capture register register_once register_for_session unregister '
    "unregister_for_session getFeatureFlag getFeatureFlagResult isFeatureEnabled "
    "reloadFeatureFlags updateEarlyAccessFeatureEnrollment getEarlyAccessFeatures on "
    "onFeatureFlags onSessionId getSurveys getActiveMatchingSurveys renderSurvey canRenderSurvey "
    "getNextSurveyStep identify setPersonProperties group resetGroups setPersonPropertiesForFlags "
    "resetPersonPropertiesForFlags setGroupPropertiesForFlags resetGroupPropertiesForFlags reset "
    "get_distinct_id getGroups get_session_id get_session_replay_url alias set_config "
    "startSessionRecording stopSessionRecording sessionRecordingStarted captureException "
    "loadToolbar get_property getSessionProperty createPersonProfile opt_in_capturing "
    "opt_out_capturing has_opted_in_capturing has_opted_out_capturing "
    'clear_opt_in_out_capturing debug".split(" "),n=0;n<o.length;n++)g(u,o[n]);'
    "e._i.push([i,s,a])},e.__SV=1)}(document,window.posthog||[]);"
)

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>Shop</title>
<script>
    {snippet}
    posthog.init('{token}', {{
        api_host: '{api_host}',
        defaults: '2026-05-30',
        opt_out_useragent_filter: true
    }})
</script>
</head>
<body>
<h1>Shop</h1>
<a id="next" href="/next">next</a>
</body>
</html>
"""

NEXT = b"<!doctype html><html><head><title>Next</title></head><body>elsewhere</body></html>"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    }


@dataclass
class Backend:
    server: ServerProcess
    project_id: int
    token: str
    api_key: str

    def events(self) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.server.url}/api/projects/{self.project_id}/events/live?limit=500",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
        r.raise_for_status()
        events: list[dict[str, Any]] = r.json()["events"]
        return events


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    data_dir = tmp_path_factory.mktemp("posthog-js") / "data"
    meta = SqliteMetadataStore(Settings().with_data_dir(data_dir).meta_db)
    created = meta.create_project("shop", "UTC")
    meta.close()
    server = ServerProcess(data_dir).start()
    try:
        yield Backend(server, created.project.id, created.project.token, created.api_key)
    finally:
        server.stop()


@pytest.fixture
def shop(backend: Backend) -> Iterator[str]:
    """The customer's site: another loopback origin serving the snippet page and a next page."""
    page = PAGE.format(snippet=SNIPPET, token=backend.token, api_host=backend.server.url)
    body = page.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/favicon.ico":
                self.send_response(204)
                self.end_headers()
                return
            content = NEXT if self.path.startswith("/next") else body
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _wait_for(backend: Backend, names: set[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = backend.events()
        if names <= {e["event"] for e in events}:
            return events
        time.sleep(0.25)
    seen = sorted({e["event"] for e in events})
    raise AssertionError(f"missing {sorted(names - set(seen))} after {timeout} s; saw {seen}")


def test_standard_snippet_delivers_pageview_custom_identify_and_pageleave(
    browser: Browser, backend: Backend, shop: str
) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    requests: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            problems.append(f"console.{msg.type}: {msg.text} ({msg.location.get('url')})")

    def on_error(err: Error) -> None:
        problems.append(f"pageerror: {err.message}")

    def on_failed(request: Request) -> None:
        problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def on_response(response: Response) -> None:
        if response.url.startswith(backend.server.url):
            requests.append(f"{response.request.method} {response.url.split('?')[0]}")
            if response.status >= 400:
                problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)

    page.goto(shop + "/")
    page.wait_for_function("window.posthog && window.posthog.__loaded === true", timeout=20_000)
    assert page.evaluate("window.posthog.version") == POSTHOG_JS_VERSION
    anon_id = page.evaluate("window.posthog.get_distinct_id()")
    page.evaluate("window.posthog.capture('plan_chosen', {plan: 'pro'})")
    page.evaluate("window.posthog.identify('user-42', {email: 'ada@example.com'})")
    # Leave only once the SDK's own batch has landed: a capture POST still in flight when the
    # page unloads is aborted by the browser (net::ERR_ABORTED), a race of the test, not the SDK.
    _wait_for(backend, {"$pageview", "plan_chosen", "$identify"})
    page.click("#next")  # leaving the page: posthog-js sends $pageleave (sendBeacon)
    page.wait_for_url(shop + "/next")
    page.close()
    context.close()

    events = _wait_for(backend, {"$pageview", "plan_chosen", "$identify", "$pageleave"})
    by_name = {e["event"]: e for e in events}

    pageview = by_name["$pageview"]
    assert pageview["distinct_id"] == anon_id
    assert pageview["properties"]["$current_url"] == shop + "/"
    assert pageview["properties"]["$lib"] == "web"
    assert pageview["properties"]["$lib_version"] == POSTHOG_JS_VERSION
    assert by_name["plan_chosen"]["properties"]["plan"] == "pro"
    identify = by_name["$identify"]
    assert identify["distinct_id"] == "user-42"
    assert identify["properties"]["$anon_distinct_id"] == anon_id
    assert identify["properties"]["$set"]["email"] == "ada@example.com"
    assert by_name["$pageleave"]["distinct_id"] == "user-42"
    assert by_name["$pageleave"]["properties"]["$current_url"] == shop + "/"

    # The SDK came from EventLens and took its remote config from the script, not a fallback.
    assert "GET " + backend.server.url + "/static/array.js" in requests
    assert f"GET {backend.server.url}/array/{backend.token}/config.js" in requests
    assert problems == [], "the page logged errors or had failed requests:\n" + "\n".join(problems)

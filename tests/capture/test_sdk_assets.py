"""posthog-js's own bundle, remote config and /decide, over the in-process app.

The browser side (the SDK really loading and sending) is tests/web/test_posthog_js.py.
"""

from __future__ import annotations

import re

import orjson
import pytest

from eventlens.web.sdk_assets import POSTHOG_JS_VERSION, VENDOR_DIR, sdk_files
from tests.capture.conftest import App

ORIGIN = {"Origin": "http://shop.example"}


def test_vendored_bundle_is_posthog_js_with_its_licence() -> None:
    assert {"array.js", "array.full.js", "surveys.js"} <= set(sdk_files())
    assert "Apache License" in (VENDOR_DIR / "LICENSE").read_text()
    package = orjson.loads((VENDOR_DIR / "package.json").read_bytes())
    assert package["name"] == "posthog-js" and package["version"] == POSTHOG_JS_VERSION
    # The bundle reports the version we pin: lazy loads ask for /static/<file>.js?v=<it>.
    assert POSTHOG_JS_VERSION in (VENDOR_DIR / "array.js").read_text()


@pytest.mark.parametrize(
    ("path", "cache"),
    [
        ("/static/array.js", "max-age=3600"),
        ("/static/array.full.js?v=" + POSTHOG_JS_VERSION, "max-age=3600"),
        (f"/static/{POSTHOG_JS_VERSION}/array.js", "immutable"),
        ("/static/1/array.js", "max-age=3600"),
        ("/static/exception-autocapture.js?v=" + POSTHOG_JS_VERSION, "max-age=3600"),
    ],
)
def test_sdk_files_are_served_with_cors(app: App, path: str, cache: str) -> None:
    r = app.client.get(path, headers=ORIGIN)
    assert r.status_code == 200, r.text
    name = path.split("?")[0].rsplit("/", 1)[1]
    assert r.content == (VENDOR_DIR / name).read_bytes()
    assert r.headers["content-type"].startswith("application/javascript")
    # The snippet sets crossOrigin="anonymous": without this header the browser refuses it.
    assert r.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    assert cache in r.headers["cache-control"]


def test_sdk_paths_do_not_shadow_the_dashboard_or_read_other_files(app: App) -> None:
    assert app.client.get("/static/js/api.js").status_code == 200  # the dashboard's module
    assert app.client.get("/static/index.html").status_code == 200
    r = app.client.get("/static/recorder.js", headers=ORIGIN)  # not vendored: no replay
    assert r.status_code == 404 and "recorder.js is not served" in r.json()["detail"]
    assert r.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    assert app.client.get("/static/..%2Fcss%2Fapp.js").status_code == 404
    assert app.client.get("/static/2/array.js").status_code == 404  # another major
    r = app.client.post("/static/array.js")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, OPTIONS"
    assert app.client.request("HEAD", "/static/array.js").status_code == 200


def test_remote_config_json(app: App) -> None:
    r = app.client.get(f"/array/{app.token}/config", headers=ORIGIN)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    config = r.json()
    assert config["token"] == app.token
    assert config["supportedCompression"] == ["gzip-js", "base64"]
    # Nothing EventLens has no endpoint for may be switched on.
    assert config["sessionRecording"] is False and config["surveys"] is False
    assert config["hasFeatureFlags"] is False and config["siteApps"] == []


def test_remote_config_js_sets_the_global_posthog_reads(app: App) -> None:
    r = app.client.get(f"/array/{app.token}/config.js/", headers=ORIGIN)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    m = re.search(
        r"window\._POSTHOG_REMOTE_CONFIG\['([^']+)'\] = \{config: (\{.*\}), siteApps: \[\]\};",
        r.text,
    )
    assert m is not None, r.text
    assert m.group(1) == app.token
    assert orjson.loads(m.group(2)) == app.client.get(f"/array/{app.token}/config").json()


def test_remote_config_preflight(app: App) -> None:
    r = app.client.request(
        "OPTIONS",
        f"/array/{app.token}/config",
        headers={**ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    assert "GET" in r.headers["access-control-allow-methods"]


@pytest.mark.parametrize("suffix", ["config", "config.js"])
def test_remote_config_unknown_and_malformed_tokens(app: App, suffix: str) -> None:
    r = app.client.get(f"/array/phc_nosuchproject/{suffix}", headers=ORIGIN)
    assert r.status_code == 404 and r.json()["field"] == "token"
    assert "unknown project token" in r.json()["detail"]
    assert r.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    r = app.client.get(f"/array/bad%20token!/{suffix}")
    assert r.status_code == 400 and r.json()["field"] == "token"


@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_decide(app: App, version: str) -> None:
    r = app.client.post(
        f"/decide/?v={version}", json={"token": app.token, "distinct_id": "u"}, headers=ORIGIN
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN["Origin"]
    body = r.json()
    assert body["featureFlags"] == {} and body["errorsWhileComputingFlags"] is False
    assert body["supportedCompression"] == ["gzip-js", "base64"]
    assert body["sessionRecording"] is False
    assert ("flags" in body) == (version == "4")


def test_decide_v1_lists_flags(app: App) -> None:
    r = app.client.post("/decide/", json={"token": app.token, "distinct_id": "u"})
    assert r.status_code == 200 and r.json()["featureFlags"] == []

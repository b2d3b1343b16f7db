"""The load itself: Locust users speaking the SDKs' wire, run headless in this process.

Run as `python -m eventlens.loadtest.load ARGS` (what `eventlens loadtest` does): Locust
monkey-patches the standard library with gevent when imported, so it runs in a process of its
own, and Locust is imported only inside `main` (first thing) and the functions it calls: this
module imports without the `loadtest` extra, like every module of the package.

- `SdkUser`: what the SDKs send. posthog-python's `POST /batch/` (JSON, gzip'd half the time),
  posthog-js's `POST /e/?compression=gzip-js` (a gzip'd JSON array, token in the properties),
  Segment's `POST /v1/batch` (HTTP Basic write key).
- `DashboardUser`: what the dashboard asks: trends and funnels through the query API.

Every request's status and latency is recorded; the report (JSON) is judged by the caller
(eventlens.loadtest.judge).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

CAPTURE = "capture"
QUERY = "query"
EVENTS = ("$pageview", "$pageview", "$pageview", "$autocapture", "signup", "purchase")
URLS = ("/", "/pricing", "/docs", "/blog/launch", "/signup")
BROWSERS = ("Chrome", "Firefox", "Safari")
PLANS = ("free", "pro", "enterprise")
USERS_POOL = 2000


class Config:
    """What the users need, set by `main` before the run."""

    token = ""
    project_id = 0
    api_key = ""
    batch_size = 10


class Recorder:
    """Every request's (group, name, status, seconds); status 0 = no HTTP answer."""

    def __init__(self) -> None:
        self.samples: dict[str, dict[str, Any]] = {}

    def add(self, group: str, name: str, status: int, seconds: float) -> None:
        entry = self.samples.setdefault(name, {"group": group, "statuses": {}, "latencies_s": []})
        entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1
        entry["latencies_s"].append(round(seconds, 6))


RECORDER = Recorder()


def _event(name: str | None = None) -> dict[str, Any]:
    return {
        "event": name or random.choice(EVENTS),
        "distinct_id": f"load-user-{random.randrange(USERS_POOL)}",
        "properties": {
            "$current_url": random.choice(URLS),
            "$browser": random.choice(BROWSERS),
            "plan": random.choice(PLANS),
            "$lib": "eventlens-loadtest",
        },
        "timestamp": datetime.now(UTC).isoformat(),
        "uuid": str(uuid.uuid4()),
    }


TRENDS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-7d"},
}
TRENDS_BREAKDOWN = {
    **TRENDS,
    "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
}
FUNNEL = {
    "kind": "FunnelsQuery",
    "series": [
        {"kind": "EventsNode", "event": "$pageview"},
        {"kind": "EventsNode", "event": "signup"},
        {"kind": "EventsNode", "event": "purchase"},
    ],
    "dateRange": {"date_from": "-7d"},
}


def user_classes() -> list[type[Any]]:
    """The Locust user classes (defined here, not at module level: Locust is imported late)."""
    from locust import FastHttpUser, between, task

    class _Recording(FastHttpUser):
        abstract = True
        group: ClassVar[str] = CAPTURE

        def _post(self, name: str, path: str, **kwargs: Any) -> None:
            started = time.perf_counter()
            with self.client.post(path, name=name, catch_response=True, **kwargs) as resp:
                status = int(resp.status_code or 0)
                RECORDER.add(self.group, name, status, time.perf_counter() - started)
                if 200 <= status < 300:
                    resp.success()
                else:
                    resp.failure(f"HTTP {status}: {(resp.text or '')[:200]}")

    class SdkUser(_Recording):
        """An app's SDKs flushing events: PostHog server and browser SDKs, and Segment's."""

        weight = 4
        wait_time = between(0.0, 0.05)
        group = CAPTURE

        @task(5)
        def posthog_batch(self) -> None:
            body = json.dumps(
                {"api_key": Config.token, "batch": [_event() for _ in range(Config.batch_size)]}
            ).encode()
            headers = {"Content-Type": "application/json"}
            if random.random() < 0.5:  # posthog-python with gzip=True
                body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
            self._post("/batch/", "/batch/", data=body, headers=headers)

        @task(3)
        def posthog_js(self) -> None:
            events = []
            for _ in range(random.randint(1, 3)):
                event = _event()
                event["properties"].update(
                    {"token": Config.token, "distinct_id": event.pop("distinct_id")}
                )
                events.append(event)
            now_ms = int(time.time() * 1000)
            self._post(
                "/e/",
                f"/e/?compression=gzip-js&ip=1&_={now_ms}&ver=1.449.2",
                data=gzip.compress(json.dumps(events).encode()),
                headers={"Content-Type": "text/plain"},
            )

        @task(2)
        def segment_batch(self) -> None:
            batch = []
            for _ in range(Config.batch_size):
                e = _event()
                batch.append(
                    {
                        "type": "track",
                        "event": e["event"],
                        "userId": e["distinct_id"],
                        "properties": e["properties"],
                        "timestamp": e["timestamp"],
                        "messageId": e["uuid"],
                    }
                )
            auth = base64.b64encode(f"{Config.token}:".encode()).decode()
            self._post(
                "/v1/batch",
                "/v1/batch",
                data=json.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()}),
                headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
            )

    class DashboardUser(_Recording):
        """Someone looking at a dashboard: its insights refresh every few seconds."""

        weight = 1
        wait_time = between(0.2, 1.0)
        group = QUERY

        def _query(self, name: str, query: dict[str, Any]) -> None:
            self._post(
                f"query: {name}",
                f"/api/projects/{Config.project_id}/query",
                data=json.dumps({"query": query}),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {Config.api_key}",
                },
            )

        @task(3)
        def trends(self) -> None:
            self._query("trends", TRENDS)

        @task(1)
        def trends_breakdown(self) -> None:
            self._query("trends by browser", TRENDS_BREAKDOWN)

        @task(2)
        def funnel(self) -> None:
            self._query("funnel", FUNNEL)

    return [SdkUser, DashboardUser]


def run(url: str, users: int, spawn_rate: float, seconds: float) -> dict[str, Any]:
    """Run the users against `url` for `seconds`; the report (what `judge` reads)."""
    import gevent
    import locust
    from locust.env import Environment
    from locust.stats import (
        get_error_report_summary,
        get_percentile_stats_summary,
        get_stats_summary,
    )

    env = Environment(user_classes=user_classes(), host=url.rstrip("/"))
    runner = env.create_local_runner()
    started = time.monotonic()
    runner.start(users, spawn_rate=spawn_rate)
    gevent.sleep(max(0.0, seconds - (time.monotonic() - started)))
    elapsed = time.monotonic() - started
    runner.quit()  # stops the users (an in-flight request is not awaited)
    # Locust's own summary tables, for the reader (`eventlens loadtest` prints them).
    lines = get_stats_summary(env.stats, current=False) + get_percentile_stats_summary(env.stats)
    lines += get_error_report_summary(env.stats)
    print("\n".join(lines))
    return {
        "url": url,
        "users": users,
        "seconds": round(elapsed, 3),
        "locust": locust.__version__,
        "endpoints": RECORDER.samples,
    }


def main(argv: list[str] | None = None) -> int:
    import locust  # noqa: F401  first: it monkey-patches the standard library for gevent

    parser = argparse.ArgumentParser(prog="eventlens-loadtest-load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--project-id", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    Config.token, Config.project_id, Config.api_key = args.token, args.project_id, args.api_key
    Config.batch_size = args.batch_size
    report = run(args.url, args.users, args.spawn_rate, args.seconds)
    args.report.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

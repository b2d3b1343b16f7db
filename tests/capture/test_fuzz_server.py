"""Generated bad input against a real `eventlens serve` on loopback, over every capture endpoint
and encoding: never a 5xx, every answer before the deadline, and afterwards the consumer still
lands events (of the fuzzed project and of another one) and the events stored before the run
are intact. One server for the module; the examples are bounded so the module stays well under
a minute or two."""

from __future__ import annotations

import base64
import gzip
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventlens.capture.fields import MAX_DEPTH
from tests.capture.test_e2e import table_rows
from tests.capture.test_fuzz import bodies, segment_messages
from tests.support.server import ServerProcess, create_project

POSTHOG = ["/batch", "/e", "/i/v0/e", "/capture", "/track", "/engage"]
SEGMENT = ["/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group"]
SEGMENT += ["/v1/alias"]
DOCUMENTED = {200, 400, 401, 405, 413}
DEADLINE = 10.0  # seconds per request: a hang fails the example


@dataclass
class Fuzzed:
    server: ServerProcess
    data_dir: Path
    token: str
    pid: int
    other_token: str
    other_pid: int
    before: dict[str, dict[str, Any]]  # uuid -> row, stored before any fuzzing


def _send_and_wait(
    f: ServerProcess, data_dir: Path, token: str, pid: int, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    r = httpx.post(f.url + "/batch/", json={"api_key": token, "batch": events}, timeout=DEADLINE)
    assert r.status_code == 200 and "rejected" not in r.json(), r.text
    want = {e["uuid"] for e in events}
    deadline = time.monotonic() + 30
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            rows = table_rows(data_dir, pid, len(want), timeout=1)
        except AssertionError:  # no table yet, or too few rows: poll on
            continue
        if want <= {row["uuid"] for row in rows}:
            return [row for row in rows if row["uuid"] in want]
    raise AssertionError(f"events {sorted(want)} of project {pid} never reached the table in 30 s")


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Fuzzed]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        a = create_project(data_dir, "fuzzed")
        b = create_project(data_dir, "bystander")
        proc = ServerProcess(data_dir).start()
        try:
            history = [
                {
                    "event": "before",
                    "distinct_id": f"u{i}",
                    "uuid": str(uuid.uuid4()),
                    "timestamp": "2024-03-01T12:00:00Z",
                    "properties": {"i": i, "s": "tab\there", "nested": {"a": [1, {"b": None}]}},
                }
                for i in range(5)
            ]
            rows = _send_and_wait(proc, data_dir, a["token"], int(a["id"]), history)
            yield Fuzzed(
                proc,
                data_dir,
                a["token"],
                int(a["id"]),
                b["token"],
                int(b["id"]),
                {r["uuid"]: r for r in rows},
            )
        finally:
            proc.stop()


def _check(r: httpx.Response) -> None:
    assert r.status_code in DOCUMENTED, (r.status_code, r.text[:500])
    if r.status_code != 200:
        body = r.json()
        assert body["detail"], body


# Text that is stored differently or refused by strict parsers: NUL, C0 controls, lone
# surrogates (json.dumps escapes them as \udXXX, as JavaScript's JSON.stringify does).
nasty_text = st.text(
    alphabet=st.sampled_from(["a", "\x00", "\x01", "\x1f", "\ud800", "\udfff", "é", "😀", "\\"]),
    max_size=6,
)
nasty_values: st.SearchStrategy[Any] = st.recursive(
    nasty_text
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=6,
)
nasty_events = st.fixed_dictionaries(
    {"event": nasty_text | st.just("ok"), "distinct_id": nasty_text | st.just("u")},
    optional={
        "properties": st.dictionaries(nasty_text, nasty_values, max_size=3),
        "$set": st.dictionaries(nasty_text, nasty_values, max_size=2),
        "uuid": nasty_text | st.uuids().map(str),
        "timestamp": nasty_text | st.integers(-(2**70), 2**70) | st.just("0001-01-01T00:00:00Z"),
    },
)


def _deep(depth: int, leaf: str = "{}") -> str:
    return '{"a":' * depth + leaf + "}" * depth


@st.composite
def posthog_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["generated", "nasty", "deep", "garbage", "numbers"]))
    if kind == "generated":
        return json.dumps(draw(bodies())[0]).encode()
    if kind == "nasty":
        batch = draw(st.lists(nasty_events, min_size=1, max_size=4))
        return json.dumps({"api_key": "TOKEN", "batch": batch}).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([MAX_DEPTH - 2, MAX_DEPTH, 254, 1000, 1030, 20_000]))
        deep = '{"event":"d","distinct_id":"u","properties":' + _deep(depth) + "}"
        return (
            '{"api_key":"TOKEN","batch":[{"event":"ok","distinct_id":"u"},' + deep + "]}"
        ).encode()
    if kind == "numbers":
        n = draw(
            st.sampled_from(["1e400", "-1e400", "1" * 5000, "NaN", "Infinity", "-0", "1e-400"])
        )
        return ('{"api_key":"TOKEN","batch":[{"event":"n","distinct_id":' + n + "}]}").encode()
    return draw(st.binary(max_size=64) | st.sampled_from([b"\x1f\x8b", b"data=", b"\xff\xfe{}"]))


def _encode(raw: bytes, encoding: str, path: str) -> tuple[str, bytes, dict[str, str]]:
    if encoding == "gzip":
        return path, gzip.compress(raw), {"Content-Encoding": "gzip"}
    if encoding == "gzip-js":
        return path + "?compression=gzip-js", gzip.compress(raw), {"Content-Type": "text/plain"}
    if encoding == "truncated-gzip":
        return path, gzip.compress(raw)[:-5], {}
    if encoding == "base64":
        return path + "?compression=base64", base64.b64encode(raw), {}
    if encoding == "form":
        data = base64.b64encode(raw).replace(b"+", b"%2B").replace(b"/", b"%2F")
        return path, b"data=" + data, {"Content-Type": "application/x-www-form-urlencoded"}
    if encoding == "form-many-fields":
        extra = b"&".join(b"f%d=1" % i for i in range(150))
        return path, b"data=" + base64.b64encode(raw) + b"&" + extra, {}
    if encoding == "lz64":
        return path + "?compression=lz64", raw, {}
    if encoding == "brotli":
        return path, raw, {"Content-Encoding": "br"}
    return path, raw, {"Content-Type": "application/json"}


ENCODINGS = ["plain", "gzip", "gzip-js", "truncated-gzip", "base64", "form"]
ENCODINGS += ["form-many-fields", "lz64", "brotli"]
_fuzz_settings = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_fuzz_settings
@given(
    raw=posthog_bodies(),
    encoding=st.sampled_from(ENCODINGS),
    path=st.sampled_from(POSTHOG),
    slash=st.booleans(),
    method=st.sampled_from(["POST", "POST", "POST", "GET"]),
)
@example(raw=b"x" * (3 << 20), encoding="plain", path="/e", slash=True, method="POST")
@example(raw=b"\0" * (30 << 20), encoding="gzip", path="/batch", slash=True, method="POST")
def test_posthog_endpoints(
    fuzzed: Fuzzed, raw: bytes, encoding: str, path: str, slash: bool, method: str
) -> None:
    raw = raw.replace(b"TOKEN", fuzzed.token.encode())
    url, content, headers = _encode(raw, encoding, path + ("/" if slash else ""))
    with httpx.Client(base_url=fuzzed.server.url, timeout=DEADLINE) as client:
        if method == "GET":
            data = base64.b64encode(raw).decode()
            r = client.get(url, params={"data": data} if len(data) < 6000 else None)
        else:
            r = client.post(url, content=content, headers=headers)
    _check(r)


@st.composite
def segment_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["generated", "nasty", "deep", "garbage"]))
    if kind == "generated":
        batch = draw(st.lists(segment_messages, max_size=5))
        # Also the whole body as a message, for the single-message endpoints.
        first = batch[0] if batch and isinstance(batch[0], dict) else {}
        return json.dumps({"batch": batch, "writeKey": "TOKEN", **first}).encode()
    if kind == "nasty":
        msg = {
            "type": draw(st.sampled_from(["track", "identify", "alias", "group", "page"])),
            "event": draw(nasty_text),
            "userId": draw(nasty_text),
            "previousId": draw(nasty_text),
            "groupId": draw(nasty_text),
            "properties": draw(st.dictionaries(nasty_text, nasty_values, max_size=3)),
            "traits": draw(st.dictionaries(nasty_text, nasty_values, max_size=2)),
            "context": draw(nasty_values),
        }
        return json.dumps({"batch": [msg], "writeKey": "TOKEN", **msg}).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([MAX_DEPTH, 300, 1030, 20_000]))
        msg = '{"type":"track","event":"d","userId":"u","properties":' + _deep(depth) + "}"
        return (
            '{"writeKey":"TOKEN","context":' + _deep(depth) + ',"batch":[' + msg + "]}"
        ).encode()
    return draw(st.binary(max_size=64))


@_fuzz_settings
@given(
    raw=segment_bodies(),
    encoding=st.sampled_from(["plain", "gzip", "truncated-gzip", "brotli"]),
    path=st.sampled_from(SEGMENT),
    auth=st.booleans(),
)
@example(raw=b"x" * (600 << 10), encoding="plain", path="/v1/batch", auth=True)
def test_segment_endpoints(
    fuzzed: Fuzzed, raw: bytes, encoding: str, path: str, auth: bool
) -> None:
    raw = raw.replace(b"TOKEN", fuzzed.token.encode())
    url, content, headers = _encode(raw, encoding, path)
    if auth:
        headers["Authorization"] = (
            "Basic " + base64.b64encode(fuzzed.token.encode() + b":").decode()
        )
    r = httpx.post(fuzzed.server.url + url, content=content, headers=headers, timeout=DEADLINE)
    _check(r)


def test_nul_ids_never_stop_ingest(fuzzed: Fuzzed) -> None:
    """Issue 10 defect 1 at the capture side: the exact body, twice, and a batch holding "p" and
    "p\\u0000q": refused per event, and ingest goes on (checked by the test below)."""
    nul = {"event": "x", "distinct_id": "a\u0000b"}
    pair = [{"event": "x", "distinct_id": "p"}, {"event": "x", "distinct_id": "p\u0000q"}]
    answers = [
        httpx.post(
            fuzzed.server.url + "/batch/",
            json={"api_key": fuzzed.token, "batch": batch},
            timeout=DEADLINE,
        )
        for batch in ([nul], [nul], pair)
    ]
    for r in answers:  # all sent first, so that the next test sees what they did to ingest
        assert r.status_code == 200, r.text
        assert "control character U+0000" in r.json()["rejected"][-1]["reason"], r.text


def test_afterwards_ingest_runs_and_history_is_intact(fuzzed: Fuzzed) -> None:
    """Runs last in the module: both projects' new events land (the consumer survived every
    input above and nothing of the fuzzed project delays the other), and the events stored
    before the run are unchanged."""
    for token, pid in ((fuzzed.other_token, fuzzed.other_pid), (fuzzed.token, fuzzed.pid)):
        probe = {"event": "probe", "distinct_id": "p", "uuid": str(uuid.uuid4())}
        _send_and_wait(fuzzed.server, fuzzed.data_dir, token, pid, [probe])
    assert httpx.get(fuzzed.server.url + "/_health", timeout=DEADLINE).status_code == 200
    now = {r["uuid"]: r for r in table_rows(fuzzed.data_dir, fuzzed.pid, len(fuzzed.before))}
    for u, row in fuzzed.before.items():
        assert now[u] == row

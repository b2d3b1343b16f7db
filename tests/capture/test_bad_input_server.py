"""Bad input through a real server: the documented status and message for each, the server
stays up, and the valid events of a partly bad batch reach the table (the bad ones the
dead-letter store)."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.capture.test_e2e import table_rows
from tests.support.server import ServerProcess, create_project, run_cli


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """One server for all the bad-request cases: each case also checks it is still up."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        project = create_project(data_dir)
        proc = ServerProcess(data_dir).start()
        try:
            yield proc, project
        finally:
            proc.stop()


def _bomb() -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(comp.compress(b"\0" * (1 << 20)) for _ in range(100)) + comp.flush()


CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    # (method, path, httpx kwargs, status, text in the detail)
    ("POST", "/batch/", {"content": b"{oops"}, 400, "not valid JSON"),
    ("POST", "/batch/", {"content": b"[]"}, 400, "empty"),
    ("POST", "/batch/", {"json": {"api_key": "TOKEN", "batch": []}}, 400, "empty"),
    ("POST", "/batch/", {"json": {"api_key": "TOKEN", "batch": "x"}}, 400, "JSON array"),
    ("POST", "/batch/", {"json": 17}, 400, "got int"),
    ("POST", "/batch/", {"json": {"api_key": "phc_nope", "batch": [{}]}}, 401, "unknown"),
    (
        "POST",
        "/batch/",
        {"json": {"batch": [{"event": "x", "distinct_id": "u"}]}},
        401,
        "no project token",
    ),
    (
        "POST",
        "/batch/",
        {"json": {"api_key": "TOKEN", "batch": [{"token": "phc_b"}]}},
        401,
        "differs",
    ),
    ("POST", "/e/", {"content": b"x" * (3 << 20)}, 413, "limit"),
    ("POST", "/e/", {"content": _bomb(), "headers": {"Content-Encoding": "gzip"}}, 413, "inflates"),
    ("POST", "/e/", {"content": b"{}", "headers": {"Content-Encoding": "br"}}, 400, "'br'"),
    ("DELETE", "/batch/", {}, 405, "DELETE"),
    ("GET", "/v1/batch", {}, 405, "GET"),
    ("POST", "/nowhere", {}, 404, "/nowhere"),
    ("POST", "/v1/batch", {"json": {"batch": [{"type": "track"}]}}, 401, "no project token"),
    # Issue 10: undecodable depth and too many form fields were 500s.
    ("POST", "/batch/", {"content": b"[" * 20_000 + b"]" * 20_000}, 400, "nests deeper than"),
    ("POST", "/v1/batch", {"content": b"[" * 20_000 + b"]" * 20_000}, 400, "nests deeper than"),
    (
        "POST",
        "/e/",
        {
            "content": b"data=e30=&" + b"&".join(b"f%d=1" % i for i in range(150)),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        400,
        "more than 100 fields",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]} {c[1]} {c[3]} {c[4]}" for c in CASES])
def test_bad_requests(shared: tuple[ServerProcess, dict[str, str]], case: tuple[Any, ...]) -> None:
    server, project = shared
    method, path, kwargs, status, needle = case
    if "json" in kwargs:
        kwargs = {"json": json.loads(json.dumps(kwargs["json"]).replace("TOKEN", project["token"]))}
    r = httpx.request(method, server.url + path, timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]
    assert httpx.get(server.url + "/_health").status_code == 200


def test_valid_events_of_a_bad_batch_are_kept(
    server: ServerProcess, project: dict[str, Any], data_dir: Path
) -> None:
    pid = int(project["id"])
    batch = [
        {"event": "ok1", "distinct_id": "u"},
        {"event": "no-id"},
        {"distinct_id": "u"},
        {"event": "bad-uuid", "distinct_id": "u", "uuid": "123"},
        {"event": "bad-props", "distinct_id": "u", "properties": "x"},
        {"event": "ok2", "distinct_id": 42},
    ]
    r = httpx.post(server.url + "/batch/", json={"api_key": project["token"], "batch": batch})
    assert r.status_code == 200
    assert [x["index"] for x in r.json()["rejected"]] == [1, 2, 3, 4]
    rows = table_rows(data_dir, pid, 2)
    assert sorted((r["event"], r["distinct_id"]) for r in rows) == [("ok1", "u"), ("ok2", "42")]
    # The invalid ones are listed, with reasons, by the operator CLI.
    deadline = time.monotonic() + 10
    while True:
        listed = json.loads(run_cli("deadletter", "list", "--json", data_dir=data_dir).stdout)
        if len(listed) == 4 or time.monotonic() > deadline:
            break
    assert sorted(d["index"] for d in listed) == [1, 2, 3, 4]
    assert any("not a valid UUID" in d["reason"] for d in listed)


def test_deep_event_is_dead_lettered_and_its_batch_stored(
    server: ServerProcess, project: dict[str, Any], data_dir: Path
) -> None:
    """Issue 10 defect 2: properties 300 levels deep made the whole batch a 500."""
    deep = b'{"event":"deep","distinct_id":"u","properties":' + b'{"a":' * 300 + b"1"
    deep += b"}" * 301
    ok = b'{"event":"ok","distinct_id":"u"}'
    for path, body in (
        ("/batch/", b'{"api_key":"%s","batch":[%s,%s]}' % (project["token"].encode(), ok, deep)),
        (
            "/v1/batch",
            b'{"writeKey":"%s","batch":[{"type":"track","event":"ok","userId":"u"},%s]}'
            % (
                project["token"].encode(),
                deep.replace(b'"event":"deep"', b'"type":"track","event":"deep","userId":"u"'),
            ),
        ),
    ):
        r = httpx.post(server.url + path, content=body, timeout=30)
        assert r.status_code == 200, r.text
        assert [x["index"] for x in r.json()["rejected"]] == [1]
        assert "64 levels" in r.json()["rejected"][0]["reason"]
    rows = table_rows(data_dir, int(project["id"]), 2)
    assert sorted(r["event"] for r in rows) == ["ok", "ok"]

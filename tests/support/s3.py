"""moto's S3 server on loopback, for tests of event tables on object storage (facts.md: MinIO
has no package here; moto is the S3 stand-in). Real HTTP: Delta Lake, pyarrow's S3 file
system and boto3 all talk to it as to any S3 endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

BUCKET = "eventlens-test"


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def prefix(self, name: str = "t") -> str:
        """A fresh s3:// prefix (every table of a test in its own)."""
        return f"s3://{self.bucket}/{name}-{uuid.uuid4().hex[:12]}"

    def keys(self, prefix: str = "") -> list[str]:
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return out


ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


@contextmanager
def moto_s3() -> Iterator[S3]:
    """Start moto's S3 server on a free loopback port, point the AWS_* variables at it (this
    process and the processes it starts, e.g. Ray workers) and create the test bucket.

    A separate process, not moto's in-process thread: Delta Lake's Rust calls hold the GIL
    while they wait for S3, so a server thread in the same interpreter would never answer."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() - started > 30:
                server.kill()
                raise RuntimeError(f"moto's S3 server did not start on port {port}") from None
            time.sleep(0.05)
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
    )
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        yield S3(endpoint, BUCKET)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.terminate()
        server.wait(10)

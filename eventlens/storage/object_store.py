"""Where an event table lives: a local directory (the default) or an S3-compatible bucket.

`EVENTLENS_STORAGE_URL=s3://bucket/prefix` puts every project's event table under that prefix
(docs/adr/0009-ray-and-object-storage.md). The connection comes from the usual AWS variables,
read when a table or a file system is first opened: `AWS_ENDPOINT_URL` (or
`AWS_ENDPOINT_URL_S3`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` (default
us-east-1). Two clients read and write there: Delta Lake (commits, with a conditional put on
the log entry so two writers can never both commit version N) and pyarrow's S3 file system
(every Parquet read: DuckDB's own S3 support cannot be installed here, facts.md).

A data file is named by its full URI (`s3://bucket/key`); local files by their absolute path.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from eventlens.errors import InvalidInput

Location = Path | str  # a local directory, or an "s3://bucket/prefix" URI

SCHEMES = ("s3",)


def is_remote(location: Location) -> bool:
    """Is `location` (a table root or a data file) an object-storage URI?"""
    return isinstance(location, str) and "://" in location


def check_url(url: str) -> str:
    """`url` if it is a supported storage URL ("" = local files), else InvalidInput."""
    if not url:
        return url
    parsed = urlparse(url)
    if parsed.scheme not in SCHEMES or not parsed.netloc:
        raise InvalidInput(
            f"storage URL {url!r} is not s3://BUCKET[/PREFIX] (supported schemes: "
            f"{', '.join(SCHEMES)})",
            field="storage_url",
        )
    return url.rstrip("/")


def join(location: Location, *parts: str) -> Location:
    """`location`/parts..., keeping its kind (Path stays Path, a URI stays a URI)."""
    if isinstance(location, Path):
        return location.joinpath(*parts)
    return "/".join([location.rstrip("/"), *parts])


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def delta_options(location: Location) -> dict[str, str] | None:
    """Delta Lake's storage options for `location` (None for a local directory)."""
    if not is_remote(location):
        return None
    options = {
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        # Safe concurrent commits: the log entry for version N is written only if absent (ETag
        # conditional put), so no lock service (DynamoDB) is needed (facts.md).
        "conditional_put": "etag",
    }
    endpoint = _endpoint()
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if os.environ.get(name):
            options[name] = os.environ[name]
    return options


def _env_key() -> tuple[str | None, ...]:
    return tuple(
        os.environ.get(n)
        for n in (
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        )
    )


@functools.lru_cache(maxsize=8)
def _s3(key: tuple[str | None, ...]) -> pafs.S3FileSystem:
    endpoint_s3, endpoint, region, access, secret, token = key
    url = endpoint_s3 or endpoint
    kwargs: dict[str, object] = {"region": region or "us-east-1"}
    if url:
        parsed = urlparse(url)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    if access and secret:
        kwargs.update(access_key=access, secret_key=secret, session_token=token)
    return pafs.S3FileSystem(**kwargs)


def filesystem(paths: Sequence[str]) -> tuple[pafs.FileSystem, list[str]]:
    """An Arrow file system that reads `paths` and the paths as it names them: the local one
    for absolute paths, S3 (from the AWS variables, one client per configuration) for
    s3:// URIs. InvalidInput when `paths` mix kinds or name another scheme."""
    remote = [is_remote(p) for p in paths]
    if not any(remote):
        return pafs.LocalFileSystem(), list(paths)
    if not all(remote):
        raise InvalidInput("a read mixes local files and object-storage URIs")
    out = []
    for p in paths:
        parsed = urlparse(p)
        if parsed.scheme not in SCHEMES:
            raise InvalidInput(f"unsupported storage scheme in {p!r}")
        out.append(parsed.netloc + parsed.path)
    return _s3(_env_key()), out

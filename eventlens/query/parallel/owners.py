"""Which worker owns which person bucket: rendezvous (highest-random-weight) hashing.

Every (worker, bucket) pair gets a pseudo-random weight; a bucket's owner is the live worker
with the highest weight, its second choice the next one, and so on. So the map needs no
coordination (every query server computes the same owners from the same worker list), and a
change of the worker list moves only what it must: a new worker takes the buckets it now
outweighs (about 1/N of them), a lost worker's buckets go to their second choices, and no
other bucket moves (docs/adr/0009-ray-and-object-storage.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def weight(worker: str, bucket: str) -> int:
    """The pair's weight: 64 bits of BLAKE2b, stable across processes and Python versions
    (unlike hash())."""
    digest = hashlib.blake2b(f"{worker}\x00{bucket}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranking(bucket: str, workers: Iterable[str]) -> list[str]:
    """`workers` by preference for `bucket`: the owner first, then who takes over if it is
    lost, and so on. Ties (never in practice) break by name, so the order is total."""
    return sorted(workers, key=lambda w: (-weight(w, bucket), w))


def owner(bucket: str, workers: Sequence[str]) -> str:
    """The owner of `bucket` among `workers` (ValueError if there are none)."""
    if not workers:
        raise ValueError("no workers to own buckets")
    return min(workers, key=lambda w: (-weight(w, bucket), w))


def assign(buckets: Iterable[str], workers: Sequence[str]) -> dict[str, str]:
    """bucket -> owner for every bucket."""
    return {b: owner(b, workers) for b in buckets}


def bucket_key(paths: Sequence[str], bucket: int) -> str:
    """The ownership key of person bucket `bucket` of the table holding data files `paths`:
    the table's root (the part of a file path before its partition directories) and the
    bucket number, so buckets of different tables spread independently."""
    root = paths[0].split("/day=", 1)[0] if paths else "memory"
    return f"{root}#{bucket}"

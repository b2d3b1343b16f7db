"""The bucket-owner map (rendezvous hashing): adding a worker moves only the buckets the new
worker takes, about 1/N of them; losing one moves only its own buckets, to their second
choices. Pure functions: no Ray here (test_ray.py checks the real executor)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eventlens.query.parallel import owners

WORKERS = st.lists(
    st.text("abcdefgh0123456789-", min_size=1, max_size=8), min_size=1, max_size=12, unique=True
)
BUCKETS = [
    owners.bucket_key([f"/data/p{p}/events/day=2024-01-01/bucket={b}/f.parquet"], b)
    for p in range(4)
    for b in range(64)
]


@settings(max_examples=50, deadline=None)
@given(WORKERS, st.text("xyz", min_size=1, max_size=6))
def test_adding_a_worker_moves_only_the_buckets_it_takes(workers: list[str], new: str) -> None:
    if new in workers:
        return
    before = owners.assign(BUCKETS, workers)
    after = owners.assign(BUCKETS, [*workers, new])
    moved = [b for b in BUCKETS if before[b] != after[b]]
    assert all(after[b] == new for b in moved)  # nothing moves between old workers
    # About 1/(N+1) of 256 buckets: the share is binomial; 2x + 20 is far outside its spread.
    n = len(workers) + 1
    assert len(moved) <= 2 * len(BUCKETS) / n + 20, (len(moved), n)


@settings(max_examples=50, deadline=None)
@given(WORKERS.filter(lambda w: len(w) >= 2), st.data())
def test_losing_a_worker_moves_only_its_buckets_to_their_second_choice(
    workers: list[str], data: st.DataObject
) -> None:
    lost = data.draw(st.sampled_from(workers))
    survivors = [w for w in workers if w != lost]
    before = owners.assign(BUCKETS, workers)
    after = owners.assign(BUCKETS, survivors)
    for b in BUCKETS:
        if before[b] != lost:
            assert after[b] == before[b]
        else:
            assert after[b] == owners.ranking(b, workers)[1]


def test_the_map_is_balanced_and_stable() -> None:
    workers = [f"owner-{i}" for i in range(4)]
    counts = {w: 0 for w in workers}
    for b, w in owners.assign(BUCKETS, workers).items():
        counts[w] += 1
        assert owners.owner(b, list(reversed(workers))) == w  # order of the list is irrelevant
    # 256 buckets over 4 workers: each near 64 (binomial sd ~7).
    assert max(counts.values()) <= 64 + 30 and min(counts.values()) >= 64 - 30, counts
    assert owners.weight("a", "b") == owners.weight("a", "b") != owners.weight("b", "a")
    assert owners.bucket_key([], 3) == "memory#3"

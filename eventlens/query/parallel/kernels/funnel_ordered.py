"""Fast ordered funnels (no exclusions; no attribution, first/last touch or step).

Equivalent to the per-person attempt loop because, in a non-strict ordered funnel, an attempt
anchored at a first-step event advances greedily: step s is filled by the first later event (in
the person's (time, step, uuid) order) that matches step s, and a later match can only be later
in time, so if the first one is outside the window every one is. So every anchor's chain
anchor -> next step-1 match -> next step-2 match ... is followed in one compiled pass per person
(compiled.ordered_funnel); each person's best attempt is the furthest chain, the earliest anchor
on a tie (the reference's rule). The differential tests hold this equal to the reference.
"""

from __future__ import annotations

import numpy as np

from eventlens.query.parallel.kernels.compiled import ordered_funnel, touch_labels


def ordered_funnels(
    person: np.ndarray,
    ts: np.ndarray,
    bits: np.ndarray,
    n: int,
    window: int,
    labels: np.ndarray | None,
    null_label: int,
    attribution: str,
    attribution_step: int,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Inputs are one partition's rows in (person, ts, uuid) order: person codes, µs, step bits,
    breakdown label ids (None without breakdown). Returns per person with a first-step event:
    (level, label id (-1 without breakdown), chain) where chain[s] is the row filling step s of
    the best attempt (-1 if not reached), rows indexing the input order."""
    size = person.size
    # Equal timestamps: earlier steps first (then the uuid order the input already has). The
    # input is in (person, ts) order, so only runs of equal (person, ts) may need reordering.
    order: np.ndarray | None = None
    if ((person[1:] == person[:-1]) & (ts[1:] == ts[:-1])).any():
        lowest = np.where(bits == 0, n, _lowest_bit(bits))
        order = np.lexsort((np.arange(size), lowest, ts, person))
    p, t, b = (person, ts, bits) if order is None else (person[order], ts[order], bits[order])
    best_level, chains = ordered_funnel(p, t, b, n, window)
    best_chain = [chains[:, s] for s in range(n)]
    if order is not None:
        best_chain = [np.where(c >= 0, order[np.maximum(c, 0)], -1) for c in best_chain]
    label = np.full(best_level.size, -1, np.int64)
    if labels is not None:
        label = _attribute(
            person,
            bits,
            labels,
            null_label,
            attribution,
            attribution_step,
            p[chains[:, 0]],
            best_chain,
        )
    return best_level, label, best_chain


def _lowest_bit(bits: np.ndarray) -> np.ndarray:
    low = bits & -bits
    out: np.ndarray = np.log2(np.maximum(low, 1)).astype(np.int64)
    return out


def _attribute(
    person: np.ndarray,
    bits: np.ndarray,
    labels: np.ndarray,
    null_label: int,
    attribution: str,
    step: int,
    persons: np.ndarray,
    chain: list[np.ndarray],
) -> np.ndarray:
    if attribution == "step":
        rows = chain[step]
        return np.where(rows >= 0, labels[np.maximum(rows, 0)], null_label)
    # first_touch / last_touch: the earliest / latest funnel event (any step) with a value.
    out = touch_labels(person, bits, labels, null_label, last=attribution == "last_touch")
    result: np.ndarray = out[persons]
    return result

"""Vectorised ordered funnels (no exclusions; no attribution, first/last touch or step).

Equivalent to the per-person attempt loop because, in a non-strict ordered funnel, an attempt
anchored at a first-step event advances greedily: step s is filled by the first later event (in
the person's (time, step, uuid) order) that matches step s, and a later match can only be later
in time, so if the first one is outside the window every one is. So for every anchor the chain
anchor -> next step-1 match -> next step-2 match ... is computed with one searchsorted per step
over all anchors at once; each person's best attempt is the furthest chain, the earliest anchor
on a tie (the reference's rule). The differential tests hold this equal to the reference.
"""

from __future__ import annotations

import numpy as np


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
    lowest = np.where(bits == 0, n, _lowest_bit(bits))
    # Equal timestamps: earlier steps first (then the uuid order the input already has).
    order = np.lexsort((np.arange(size), lowest, ts, person))
    p, t, b = person[order], ts[order], bits[order]
    seg_end = np.searchsorted(p, p, side="right")
    anchors = np.flatnonzero(b & 1)
    level = np.ones(anchors.size, np.int64)
    chain = [anchors]
    alive = np.ones(anchors.size, bool)
    cur = anchors
    for s in range(1, n):
        pos = np.flatnonzero((b >> s) & 1)  # rows matching step s
        if pos.size == 0:
            nxt = np.full(cur.size, -1, np.int64)
        else:
            k = np.searchsorted(pos, cur, side="right")  # first match after the previous step
            nxt = np.where(k < pos.size, pos[np.minimum(k, pos.size - 1)], -1)
        ok = alive & (nxt >= 0) & (nxt < seg_end[cur])  # same person
        ok &= t[np.maximum(nxt, 0)] - t[anchors] <= window  # window counted from step 1
        level += ok
        cur = np.where(ok, nxt, cur)
        chain.append(np.where(ok, nxt, -1))
        alive = ok
    # Best attempt per person: furthest level, earliest anchor on a tie.
    pick = np.lexsort((anchors, -level, p[anchors]))
    first = np.ones(pick.size, bool)
    first[1:] = p[anchors[pick[1:]]] != p[anchors[pick[:-1]]]
    best = pick[first]
    best_level = level[best]
    best_chain = [np.where(c[best] >= 0, order[np.maximum(c[best], 0)], -1) for c in chain]
    label = np.full(best.size, -1, np.int64)
    if labels is not None:
        label = _attribute(
            person,
            bits,
            labels,
            null_label,
            attribution,
            attribution_step,
            p[anchors[best]],
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
    cand = np.flatnonzero((bits != 0) & (labels != null_label))
    out = np.full(person.max() + 1 if person.size else 0, null_label, np.int64)
    if cand.size:
        cp = person[cand]
        if attribution == "last_touch":
            keep = np.ones(cand.size, bool)
            keep[:-1] = cp[1:] != cp[:-1]
        else:
            keep = np.ones(cand.size, bool)
            keep[1:] = cp[1:] != cp[:-1]
        out[cp[keep]] = labels[cand[keep]]
    result: np.ndarray = out[persons]
    return result

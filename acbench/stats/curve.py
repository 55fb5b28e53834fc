"""Pointwise 95% bands of a pruning curve's accuracy drop, and the prunable share read from them.

A curve is the accuracy of one model at increasing shares of pruned heads, every point evaluated on
the same items (pooled over folds: ``groups``). At each point the drop from the unpruned point,
100·(acc(0) − acc(p)), gets a paired bootstrap interval (:func:`acbench.stats.paired_bootstrap`,
the same resamples for every point, since each call starts from the same generator seed). The
prunable share with ``drop`` points allowed is then three numbers:

- ``value``: the largest share whose point drop, and that of every smaller share, is ≤ ``drop``;
- ``low``: the largest share whose drop is *significantly below* the line — the band's upper end
  < ``drop`` — at that point and at every smaller one (an intersection of one-sided tests, so no
  multiplicity correction is needed for it);
- ``high``: the largest share before the first point whose drop is *significantly above* the line
  (the band's lower end > ``drop``); the last share when none is.

As a decision interval ``[low, high]``: a claim "at least T% prunable" is supported when ``low`` ≥ T
(every step up to T stays significantly within the line), contradicted when ``high`` < T (a step
before T is significantly beyond it), and inconclusive otherwise.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from acbench.stats.bootstrap import Estimate, paired_bootstrap


def drop_bands(outcomes: Mapping[str, np.ndarray], curve: Sequence[tuple[float, str]], groups=None) -> list[Estimate]:
    """The drop (points) at every point of ``curve`` ((share, record name), the unpruned point first)."""
    if not curve or curve[0][0] != 0:
        raise ValueError("a pruning curve starts at share 0 (the unpruned model)")
    base = curve[0][1]
    return [paired_bootstrap({"base": outcomes[base], "pruned": outcomes[name]},
                             lambda acc: 100 * (acc["base"] - acc["pruned"]), groups=groups)
            for _, name in curve]


def prunable_from_bands(shares: Sequence[float], bands: Sequence[Estimate], drop: float) -> tuple[float, float, float]:
    """(value, low, high) prunable share (same unit as ``shares``) from the drop bands; see the module docstring."""
    if len(shares) != len(bands) or not shares:
        raise ValueError("one band per share, at least the unpruned point")

    def last_before(fails) -> float:
        best = shares[0]
        for share, band in zip(shares, bands):
            if fails(band):
                break
            best = share
        return best

    value = last_before(lambda b: b.value > drop + 1e-9)
    low = last_before(lambda b: not b.high < drop)
    low = max(low, shares[0])
    high = last_before(lambda b: b.low > drop + 1e-9)
    return value, min(low, value), max(high, value)

"""Paired percentile bootstrap intervals from per-item outcomes (and per-round timings).

A claim compares conditions evaluated on the **same items** (test problems, test images): the
teacher and its pruned students, MiniLM and its baseline, UHKD and OFA-KD. Each condition is a
matrix of outcomes ``(seeds, items)`` (0/1 correctness); a condition run once (a teacher) has one
row and is shared by every seed of the others. A statistic is a function of the conditions'
accuracies; the bootstrap resamples

1. **items**, with the same resampled items for every condition (this is what makes it paired:
   the item-sampling noise every condition shares cancels out of a difference), and
2. **seeds**, with the same resampled seed indices for every condition that has seeds (seed ``s``
   of the method is paired with seed ``s`` of its comparator: same initialisation and data order).

Why two levels are resampled by hand: :func:`scipy.stats.bootstrap` resamples one axis (with
``paired=True``, one common set of observation indices across samples). Items and seeds are
*crossed* (every seed is evaluated on every item), so a replicate needs two independent index draws
— one over items, one over seeds — applied to the same matrices; scipy has no such design. Where a
claim has only one level (every condition run once, or timing rounds), :func:`scipy.stats.bootstrap`
is used as it is. Both use percentile intervals, a fixed generator seed and the same number of
resamples, so the two paths agree where they overlap (tested).

Folds: cross-validation folds have different test items *and* different runs (nested, not
crossed). With ``groups`` (one fold label per item) a replicate resamples the folds with
replacement, then the items within each drawn fold (a fold drawn twice contributes two independent
item resamples of its own size): the interval then carries the between-fold variation of the
statistic (different teachers, different training runs) as well as the item noise. Seeds are
resampled as before, one seed index draw shared by every fold.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from scipy import stats

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20240601  # fixed: the same data always give the same interval
_CHUNK = 100  # replicates per block (bounds memory: chunk x items weights)

Statistic = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its percentile interval; ``method`` says how it was obtained."""

    value: float
    low: float
    high: float
    method: str
    items: int = 0
    seeds: int = 0
    resamples: int = 0

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "method": self.method,
                "items": self.items, "seeds": self.seeds, "resamples": self.resamples}


def _as_matrices(conditions: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int, int]:
    mats = {}
    for name, outcomes in conditions.items():
        m = np.asarray(outcomes, dtype=np.float64)
        mats[name] = m[None, :] if m.ndim == 1 else m
        if mats[name].ndim != 2 or mats[name].shape[1] == 0:
            raise ValueError(f"condition {name!r}: expected outcomes of shape (seeds, items), got {m.shape}")
    items = {m.shape[1] for m in mats.values()}
    if len(items) != 1:
        raise ValueError(f"conditions are not on the same items: item counts {sorted(items)}")
    seeds = {m.shape[0] for m in mats.values()} - {1}
    if len(seeds) > 1:
        raise ValueError(f"conditions have different seed counts {sorted(seeds)} (pairing needs equal seeds, "
                         "or one run shared by all)")
    return mats, items.pop(), (seeds.pop() if seeds else 1)


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 0.95 * replicates.size:
        return float("nan"), float("nan")  # the statistic is undefined in too many resamples
    alpha = (1 - confidence) / 2
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def _item_weights(rng: np.random.Generator, size: int, n_items: int, folds: list[np.ndarray] | None) -> np.ndarray:
    """(size, items) resampling weights summing to 1 per row: items (or folds, then items within them)."""
    if folds is None:
        return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=size).astype(np.float64) / n_items
    weights = np.zeros((size, n_items))
    drawn = rng.integers(0, len(folds), size=(size, len(folds)))  # (B, folds): which folds each replicate draws
    for g, members in enumerate(folds):
        times = (drawn == g).sum(axis=1)  # (B,): how often fold g was drawn
        counts = rng.multinomial(times * members.size, np.full(members.size, 1.0 / members.size))  # (B, n_g)
        weights[:, members] = counts
    return weights / weights.sum(axis=1, keepdims=True)


def fold_members(groups) -> list[np.ndarray] | None:
    """Item indices of each fold (in order of first appearance); None for one fold or no labels."""
    if groups is None:
        return None
    labels = np.asarray(list(groups))
    uniq = list(dict.fromkeys(labels.tolist()))
    return [np.flatnonzero(labels == u) for u in uniq] if len(uniq) > 1 else None


def paired_bootstrap(conditions: Mapping[str, np.ndarray], statistic: Statistic, *,
                     resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = SEED,
                     groups=None) -> Estimate:
    """Point estimate and percentile interval of ``statistic`` over items (and seeds where there are several).

    ``conditions`` maps a name to outcomes of shape ``(seeds, items)`` (or ``(items,)``);
    ``statistic`` receives ``{name: accuracy}`` with accuracies in [0, 1] as arrays of any shape
    (it must be elementwise/vectorised) and returns the claim's quantity. ``groups``: the fold of
    every item (any labels); with two or more folds the folds are resampled too (module docstring).
    """
    mats, n_items, n_seeds = _as_matrices(conditions)
    folds = fold_members(groups)
    if groups is not None and len(list(groups)) != n_items:
        raise ValueError(f"groups label {len(list(groups))} items, the conditions have {n_items}")
    names = list(mats)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = float(np.asarray(statistic({k: m.mean() for k, m in mats.items()})))
        if n_seeds == 1 and folds is None:
            rows = [m[0] for m in mats.values()]

            def scipy_statistic(*samples, axis=-1):
                return statistic({k: s.mean(axis=axis) for k, s in zip(names, samples)})

            with warnings.catch_warnings():  # all-equal outcomes: the interval is [x, x], which is right
                warnings.simplefilter("ignore", stats.DegenerateDataWarning)
                res = stats.bootstrap(rows, scipy_statistic, paired=True, vectorized=True, n_resamples=resamples,
                                      confidence_level=confidence, method="percentile", batch=_CHUNK,
                                      rng=np.random.default_rng(seed))
            reps = np.asarray(res.bootstrap_distribution, dtype=np.float64)
            low, high = _interval(reps, confidence)
            return Estimate(point, low, high, "paired percentile bootstrap over items (scipy.stats.bootstrap)",
                            n_items, 1, resamples)
        rng = np.random.default_rng(seed)
        reps = []
        for start in range(0, resamples, _CHUNK):
            size = min(_CHUNK, resamples - start)
            weights = _item_weights(rng, size, n_items, folds)  # (B, items)
            seed_idx = rng.integers(0, n_seeds, size=(size, n_seeds))  # (B, seeds)
            acc = {}
            for name, m in mats.items():
                per_seed = m @ weights.T  # (seeds or 1, B): accuracy of each seed on the resampled items
                if m.shape[0] == 1:
                    acc[name] = per_seed[0]
                else:
                    acc[name] = np.take_along_axis(per_seed, seed_idx.T, axis=0).mean(axis=0)
            reps.append(np.asarray(statistic(acc), dtype=np.float64))
        low, high = _interval(np.concatenate(reps), confidence)
    if folds is None:
        method = "paired two-level percentile bootstrap over items and seeds"
    else:
        method = (f"paired {'three' if n_seeds > 1 else 'two'}-level percentile bootstrap over {len(folds)} folds, "
                  "items within folds" + (" and seeds" if n_seeds > 1 else ""))
    return Estimate(point, low, high, method, n_items, n_seeds, resamples)


def rounds_bootstrap(samples: Mapping[str, np.ndarray], statistic: Callable[..., np.ndarray], *,
                     resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = SEED) -> Estimate:
    """Interval of a statistic of paired timing rounds (round ``i`` of every candidate was timed together).

    ``statistic(*arrays, axis)`` receives the candidates' per-round times in the order of ``samples``.
    """
    names = list(samples)
    rows = [np.asarray(samples[k], dtype=np.float64) for k in names]
    if len({r.shape for r in rows}) != 1 or rows[0].ndim != 1 or rows[0].size < 2:
        raise ValueError(f"timing rounds must be equal-length 1-D arrays of >= 2 rounds, got "
                         f"{[r.shape for r in rows]}")
    point = float(statistic(*rows, axis=-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(rows, statistic, paired=True, vectorized=True, n_resamples=resamples,
                              confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    low, high = _interval(np.asarray(res.bootstrap_distribution, dtype=np.float64), confidence)
    return Estimate(point, low, high, "paired percentile bootstrap over timing rounds (scipy.stats.bootstrap)",
                    rows[0].size, 1, resamples)

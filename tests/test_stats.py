"""Known-answer tests of the verdict statistics: paired bootstrap, decisions, minimum detectable effect."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from acbench.stats import (CONTRADICTED, INCONCLUSIVE, SUPPORTED, connor_sample_size, decide,
                           mde_paired_proportion, paired_bootstrap, rounds_bootstrap)


def difference(acc):
    return 100 * (acc["method"] - acc["baseline"])


def synthetic_pair(items: int, p_method: float, p_baseline: float, seeds: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (seeds, items) if seeds > 1 else (items,)
    return {"method": rng.random(shape) < p_method, "baseline": rng.random(shape) < p_baseline}


def verdict_of(conditions) -> str:
    est = paired_bootstrap(conditions, difference)
    return decide(est.low, est.high, "higher_is_better", 0.0, math.inf)


def test_large_true_effect_is_supported():
    assert verdict_of(synthetic_pair(2000, 0.85, 0.65, seeds=3)) == SUPPORTED


def test_no_effect_on_few_items_is_inconclusive():
    assert verdict_of(synthetic_pair(40, 0.7, 0.7, seed=3)) == INCONCLUSIVE


def test_opposite_effect_is_contradicted():
    assert verdict_of(synthetic_pair(2000, 0.6, 0.8, seeds=3)) == CONTRADICTED


def test_single_level_interval_matches_the_wald_interval_of_a_paired_difference():
    """Reference computation: the normal-approximation interval of a paired proportion difference,
    d ± z·sqrt((p10 + p01 − d²)/n), which the bootstrap must approach at this size."""
    data = synthetic_pair(5000, 0.8, 0.74, seed=1)
    a, b = data["method"].astype(float), data["baseline"].astype(float)
    n, d = a.size, (a - b).mean()
    disagree = (a != b).mean()
    half = 100 * norm.ppf(0.975) * math.sqrt((disagree - d ** 2) / n)
    est = paired_bootstrap(data, difference)
    assert est.value == pytest.approx(100 * d)
    assert est.low == pytest.approx(100 * d - half, abs=0.15)
    assert est.high == pytest.approx(100 * d + half, abs=0.15)
    assert "scipy" in est.method


def test_two_level_with_identical_seeds_matches_the_single_level_interval():
    """Resampling seeds that are all the same changes nothing: the hand two-level path must then
    give scipy's one-level interval (up to Monte Carlo error)."""
    data = synthetic_pair(3000, 0.75, 0.7, seed=2)
    one = paired_bootstrap(data, difference)
    stacked = {k: np.stack([v] * 3) for k, v in data.items()}
    two = paired_bootstrap(stacked, difference)
    assert "two-level" in two.method and two.seeds == 3
    assert two.value == pytest.approx(one.value)
    assert two.low == pytest.approx(one.low, abs=0.25) and two.high == pytest.approx(one.high, abs=0.25)


def test_seed_variation_widens_the_two_level_interval():
    rng = np.random.default_rng(5)
    base = rng.random(3000) < 0.7
    same = {"method": np.stack([rng.random(3000) < 0.75] * 3), "baseline": base}
    varied = {"method": rng.random((3, 3000)) < np.array([[0.70], [0.75], [0.80]]), "baseline": base}
    w_same = paired_bootstrap(same, difference)
    w_varied = paired_bootstrap(varied, difference)
    assert (w_varied.high - w_varied.low) > 1.3 * (w_same.high - w_same.low)


def test_pairing_removes_shared_item_noise():
    """Two conditions that agree on most items: the paired interval is much narrower than the
    interval of either accuracy alone."""
    rng = np.random.default_rng(7)
    a = rng.random(1000) < 0.7
    b = a.copy()
    flip = rng.choice(1000, 30, replace=False)
    b[flip] = ~b[flip]
    paired = paired_bootstrap({"method": a, "baseline": b}, difference)
    alone = paired_bootstrap({"method": a}, lambda acc: 100 * acc["method"])
    assert (paired.high - paired.low) < 0.5 * (alone.high - alone.low)


def test_bootstrap_is_deterministic_and_rejects_unpaired_items():
    data = synthetic_pair(200, 0.7, 0.6, seeds=2)
    assert paired_bootstrap(data, difference) == paired_bootstrap(data, difference)
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap({"method": np.ones(10), "baseline": np.ones(12)}, difference)


def test_timing_rounds_interval_contains_the_speedup():
    rng = np.random.default_rng(3)
    drift = rng.normal(0, 0.05, 30)  # machine noise shared by both candidates within a round
    base = 1.0 + drift + rng.normal(0, 0.01, 30)
    pruned = 0.8 + drift + rng.normal(0, 0.01, 30)

    def speedup(b, p, axis=-1):
        return 100 * (np.median(b, axis=axis) / np.median(p, axis=axis) - 1)

    est = rounds_bootstrap({"base": base, "pruned": pruned}, speedup)
    assert est.low < est.value < est.high
    assert 15 < est.low and est.high < 35


@pytest.mark.parametrize("direction,lower,upper,interval,expected", [
    ("higher_is_better", 0, math.inf, (0.5, 2.0), SUPPORTED),
    ("higher_is_better", 0, math.inf, (-0.5, 2.0), INCONCLUSIVE),
    ("higher_is_better", 0, math.inf, (-2.0, -0.5), CONTRADICTED),
    ("lower_is_better", -math.inf, 2.7, (0.1, 2.0), SUPPORTED),
    ("lower_is_better", -math.inf, 2.7, (2.0, 3.0), INCONCLUSIVE),
    ("lower_is_better", -math.inf, 2.7, (3.0, 4.0), CONTRADICTED),
    ("match", 17.7, 19.7, (18.0, 19.0), SUPPORTED),  # equivalence: inside the band
    ("match", 17.7, 19.7, (17.0, 19.0), INCONCLUSIVE),
    ("match", 17.7, 19.7, (20.0, 21.0), CONTRADICTED),
    ("match", 17.7, 19.7, (16.1, 16.1), CONTRADICTED),  # exact quantity: a degenerate interval
])
def test_decisions(direction, lower, upper, interval, expected):
    assert decide(*interval, direction, lower, upper) == expected


def test_mde_solves_connors_sample_size_and_matches_the_closed_form():
    """The MDE plugged back into Connor's formula gives the design's items; for small effects it
    equals the closed-form approximation (z_{1-a/2} + z_{1-b})·sqrt(psi/n)."""
    psi = 0.12
    for items in (238, 1000, 10_000):
        mde = mde_paired_proportion(items, psi)
        assert connor_sample_size(mde / 100, psi) == pytest.approx(items, rel=1e-6)
        closed = 100 * (norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(psi / items)
        assert mde == pytest.approx(closed, rel=0.05)
    # the orders of magnitude: 4-6 points on 238 items, 2-3 on 1,000, 1-2 on 5,000-10,000
    assert 4 < mde_paired_proportion(238, 0.1) < 6.5
    assert 2 < mde_paired_proportion(1000, 0.1) < 3
    assert 1 < mde_paired_proportion(5000, 0.1) < 2


def test_mde_design_terms():
    one = mde_paired_proportion(500, 0.1)
    assert mde_paired_proportion(500, 0.1, folds=4) == pytest.approx(
        mde_paired_proportion(2000, 0.1), rel=1e-9)
    assert mde_paired_proportion(500, 0.1, seeds=5, seed_correlation=1.0) == pytest.approx(one)
    assert mde_paired_proportion(500, 0.1, seeds=5, seed_correlation=0.0) == pytest.approx(
        mde_paired_proportion(2500, 0.1), rel=1e-9)
    assert mde_paired_proportion(5, 0.1) == math.inf


def test_one_fold_label_is_the_item_bootstrap():
    data = synthetic_pair(500, 0.75, 0.7, seed=3)
    assert paired_bootstrap(data, difference, groups=["fold0"] * 500) == paired_bootstrap(data, difference)


def test_fold_resampling_keeps_the_estimate_and_carries_between_fold_variation():
    """Five folds of 400 items: the same effect on every fold gives about the item-only interval;
    an effect that lives on one fold only (+25 points there, 0 elsewhere, same pooled mean) widens it."""
    rng = np.random.default_rng(11)
    groups = np.repeat([f"fold{k}" for k in range(5)], 400)
    base = rng.random(2000) < 0.6
    even = base.copy()
    gain = rng.choice(2000, 100, replace=False)
    even[gain] = True
    uneven = base.copy()
    fold0 = np.flatnonzero((groups == "fold0") & ~base)
    uneven[fold0[:int(0.25 * 400)]] = True
    for method in (even, uneven):
        items_only = paired_bootstrap({"method": method, "baseline": base}, difference)
        folds = paired_bootstrap({"method": method, "baseline": base}, difference, groups=groups)
        assert folds.value == items_only.value and "5 folds" in folds.method
        assert folds.low <= folds.value <= folds.high
    width = {}
    for name, method in (("even", even), ("uneven", uneven)):
        est = paired_bootstrap({"method": method, "baseline": base}, difference, groups=groups)
        width[name] = est.high - est.low
    assert width["uneven"] > 2 * width["even"]
    with pytest.raises(ValueError, match="groups label"):
        paired_bootstrap({"method": even, "baseline": base}, difference, groups=groups[:10])


def test_fold_labels_read_the_fold_prefix():
    from acbench.stats.folds import fold_item, fold_labels

    assert fold_labels(["a", "b"]) is None
    assert fold_labels([fold_item(0, "a"), fold_item(3, "x/y")]) == ["fold0", "fold3"]
    with pytest.raises(ValueError, match="some item ids"):
        fold_labels([fold_item(0, "a"), "b"])


def test_prunable_share_from_bands():
    """Drops with bands [0,0], [-0.5,1.5], [0.5,2.5], [3,5] against a 2-point line: the point drops stay
    within it through the third step, only the second is significantly within, the fourth is
    significantly beyond."""
    from acbench.stats import Estimate
    from acbench.stats.curve import drop_bands, prunable_from_bands

    bands = [Estimate(v, lo, hi, "t") for v, lo, hi in ((0, 0, 0), (0.5, -0.5, 1.5), (1.5, 0.5, 2.5), (4, 3, 5))]
    assert prunable_from_bands([0, 10, 20, 30], bands, 2.0) == (20, 10, 20)
    assert prunable_from_bands([0, 10, 20, 30], bands, 6.0) == (30, 30, 30)
    same = np.random.default_rng(0).random(100) < 0.5
    out = drop_bands({"a": same, "b": same}, [(0.0, "a"), (0.1, "b")])
    assert [(e.value, e.low, e.high) for e in out] == [(0, 0, 0), (0, 0, 0)]
    with pytest.raises(ValueError, match="starts at share 0"):
        drop_bands({"a": same}, [(0.1, "a")])

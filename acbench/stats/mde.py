"""Minimum detectable effect of a paired comparison of two proportions (accuracy on the same items).

Reference: the sample size of McNemar's test for paired proportions (Connor, 1987, *Biometrics*
43:207), with disagreement rate ``psi`` (share of items on which the two conditions differ) and
true paired difference ``delta``:

    n = (z_{1-alpha/2} * sqrt(psi) + z_{1-beta} * sqrt(psi - delta**2))**2 / delta**2

:func:`mde_paired_proportion` solves it for ``delta`` given ``n`` (a root of a monotone function).
For ``delta**2 << psi`` it reduces to the closed-form ``(z_{1-alpha/2} + z_{1-beta}) * sqrt(psi / n)``.

Seeds and folds enter through the effective number of items: folds add independent items
(``items * folds``); averaging ``seeds`` runs on the same items only reduces the part of the
per-item disagreement variance that differs between seeds. With ``seed_correlation`` = rho (the
correlation of a per-item difference between two seeds), the variance of the seed-averaged
difference is ``(rho + (1 - rho) / seeds)`` times that of one seed, so
``n_eff = items * folds / (rho + (1 - rho) / seeds)``. rho = 1 (seeds add nothing) is the
conservative default; it is a declared assumption of the design, not measured.
"""
from __future__ import annotations

import math

from scipy import optimize
from scipy.stats import norm


def connor_sample_size(delta: float, psi: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Items needed to detect a paired difference ``delta`` (proportion) at disagreement ``psi``."""
    if not 0 < abs(delta) <= psi <= 1:
        raise ValueError(f"need 0 < |delta| <= psi <= 1, got delta={delta}, psi={psi}")
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    return (za * math.sqrt(psi) + zb * math.sqrt(psi - delta ** 2)) ** 2 / delta ** 2


def effective_items(items: int, seeds: int = 1, folds: int = 1, seed_correlation: float = 1.0) -> float:
    if items < 1 or seeds < 1 or folds < 1 or not 0 <= seed_correlation <= 1:
        raise ValueError(f"bad design: items={items}, seeds={seeds}, folds={folds}, "
                         f"seed_correlation={seed_correlation}")
    return items * folds / (seed_correlation + (1 - seed_correlation) / seeds)


def mde_paired_proportion(items: int, disagreement: float, seeds: int = 1, folds: int = 1,
                          seed_correlation: float = 1.0, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest paired difference (in percentage points) detected with ``power`` at two-sided ``alpha``.

    Returns ``inf`` when even a difference equal to the disagreement rate is not detectable.
    """
    if not 0 < disagreement <= 1:
        raise ValueError(f"disagreement must be in (0, 1], got {disagreement}")
    n = effective_items(items, seeds, folds, seed_correlation)
    if connor_sample_size(disagreement, disagreement, alpha, power) > n:
        return math.inf
    delta = optimize.brentq(lambda d: connor_sample_size(d, disagreement, alpha, power) - n,
                            1e-9, disagreement, xtol=1e-12)
    return 100.0 * delta

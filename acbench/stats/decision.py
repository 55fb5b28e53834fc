"""Three-valued decisions from a confidence interval and a claim's threshold.

- one-sided claims (``higher_is_better`` / ``lower_is_better``) have one threshold: *supported* when
  the whole interval lies on the claim's side of it, *contradicted* when the whole interval lies on
  the other side, *inconclusive* when it spans the threshold;
- ``match`` claims are an equivalence test (two one-sided tests at the same level): *supported*
  when the interval lies inside ``[lower, upper]``, *contradicted* when it lies entirely outside
  (disjoint from it), *inconclusive* otherwise.

A point estimate without an interval (an exact, arithmetic quantity: counts, FLOPs) is the
degenerate interval ``[x, x]``, so the same rule gives the exact comparison.
"""
from __future__ import annotations

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"


def decide(low: float, high: float, direction: str, lower: float, upper: float) -> str:
    """Decision for an interval ``[low, high]``.

    ``lower``/``upper`` are the claim's acceptance bounds: for ``higher_is_better`` only ``lower``
    is used (the claim says the quantity is at least ``lower``), for ``lower_is_better`` only
    ``upper``, for ``match`` both.
    """
    if low > high:
        raise ValueError(f"interval [{low}, {high}] has low > high")
    if direction == "higher_is_better":
        return SUPPORTED if low >= lower else CONTRADICTED if high < lower else INCONCLUSIVE
    if direction == "lower_is_better":
        return SUPPORTED if high <= upper else CONTRADICTED if low > upper else INCONCLUSIVE
    if direction == "match":
        if lower <= low and high <= upper:
            return SUPPORTED
        return CONTRADICTED if high < lower or low > upper else INCONCLUSIVE
    raise ValueError(f"unknown direction {direction!r}")

"""One claim at one profile: its estimate with a 95% interval, threshold, MDE and verdict.

Verdicts (see :mod:`acbench.stats.decision` for the rule):
- *supported* / *contradicted* / *inconclusive*: from the paired bootstrap interval (or the exact
  value of an arithmetic claim) against the claim's bounds;
- *inconclusive* with the reason "no per-item data": a compared claim whose stage ran before
  per-item records existed (its point value is shown, it cannot be decided);
- *not testable at this profile*, with the reason: the stage has not run, the profile cannot check
  the claim (``profiles`` in ``published.yaml``), a health floor failed (named, with its value),
  or the records are inconsistent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from acbench import paths
from acbench.config import Claim, Replication
from acbench.items import ItemsError
from acbench.report.estimate import EstimateError, PointOnly, estimate
from acbench.report.floors import evaluate_floor, floors_of
from acbench.results import METRICS_FILE, ResultsError
from acbench.stats import CONTRADICTED, INCONCLUSIVE, SUPPORTED, decide, mde_paired_proportion

NOT_TESTABLE = "not testable at this profile"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE)
NO_ITEMS = "no per-item data"


@dataclass(frozen=True)
class ClaimResult:
    replication: str
    claim: Claim
    profile: str
    verdict: str
    reason: str = ""
    estimate: float | None = None
    low: float | None = None  # 95% interval; None where there is none (no per-item data)
    high: float | None = None
    method: str = ""
    mde: float | None = None  # minimum detectable paired difference (points) of the claim's design here

    @property
    def checkable(self) -> bool:
        """The profile can check the claim and it was decided from data (not blocked)."""
        return self.profile in self.claim.profiles and self.verdict != NOT_TESTABLE

    def as_record(self) -> dict:
        return {"verdict": self.verdict, "estimate": self.estimate, "low": self.low, "high": self.high}


def metrics_path(profile: str, replication: str, stage: str) -> Path:
    return paths.stage_dir(profile, replication, stage) / METRICS_FILE


def claim_mde(claim: Claim, profile: str) -> float | None:
    """MDE (points) of the claim's design at ``profile``; None without a design for it."""
    if claim.design is None or profile not in claim.design.at:
        return None
    at = claim.design.at[profile]
    return mde_paired_proportion(at.items, claim.design.disagreement, at.seeds, at.folds,
                                 claim.design.seed_correlation)


def judge(replication: Replication, claim: Claim, profile: str) -> ClaimResult:
    """Verdict of ``claim`` from ``profile``'s results (its stages' metrics and per-item records)."""
    def result(verdict, reason="", est=None, low=None, high=None, method=""):
        return ClaimResult(replication.name, claim, profile, verdict, reason, est, low, high, method,
                           claim_mde(claim, profile))

    if claim.result is None and claim.compare is None:
        return result(NOT_TESTABLE, claim.note or "no stage of this replication measures it")
    missing = [s for s in claim.stages if not metrics_path(profile, replication.name, s).is_file()]
    if missing:
        return result(NOT_TESTABLE, f"stage '{missing[0]}' has not run at profile {profile}")
    try:
        got = estimate(profile, replication, claim)
    except (ResultsError, ItemsError, EstimateError) as exc:
        return result(NOT_TESTABLE, str(exc))
    if isinstance(got, PointOnly):
        est, low, high, method = got.value, None, None, ""
    else:
        est, low, high, method = got.value, got.low, got.high, got.method
        if not (math.isfinite(low) and math.isfinite(high)):
            low = high = None
    undefined = est is not None and not math.isfinite(est)
    if undefined:
        est, low, high = None, None, None
    if profile not in claim.profiles:
        return result(NOT_TESTABLE, f"only {', '.join(claim.profiles)} runs can check it", est, low, high, method)
    for floor in floors_of(replication, claim.id):
        status = evaluate_floor(profile, replication, floor)
        if status.passed is None:
            return result(NOT_TESTABLE, f"floor {floor.id} cannot be evaluated: {status.text}", est, low, high, method)
        if not status.passed:
            return result(NOT_TESTABLE, f"floor {floor.id} failed: {status.text}", est, low, high, method)
    if undefined:
        return result(INCONCLUSIVE, "the statistic is undefined on these results (e.g. no loss to recover)")
    if est is None:
        return result(NOT_TESTABLE, getattr(got, "why", "") or "no value", est, low, high, method)
    if isinstance(got, PointOnly):
        return result(INCONCLUSIVE, NO_ITEMS, est, None, None, "point value from metrics.json")
    if low is None:
        return result(INCONCLUSIVE, "the statistic is undefined in too many resamples (e.g. no loss to recover)",
                      est, None, None, method)
    lower, upper = claim.bounds
    verdict = decide(low, high, claim.direction, lower, upper)
    return result(verdict, _why(claim, verdict), est, low, high, method)


def _why(claim: Claim, verdict: str) -> str:
    exact = claim.compare is None
    where = "the value" if exact else "the 95% interval"
    if claim.direction == "match":
        side = {SUPPORTED: "inside", CONTRADICTED: "outside", INCONCLUSIVE: "overlaps the edge of"}[verdict]
        return f"{where} lies {side} the band" if verdict != INCONCLUSIVE else f"{where} {side} the band"
    if verdict == INCONCLUSIVE:
        return f"{where} spans the threshold"
    good = verdict == SUPPORTED
    above = (claim.direction == "higher_is_better") == good
    return f"{where} lies {'above' if above else 'below'} the threshold"


def profiles_with_results(replication: Replication) -> list[str]:
    """Profiles (paper first) for which at least one stage of the replication has written metrics."""
    return [p for p in reversed(paths.PROFILES)
            if any(metrics_path(p, replication.name, s).is_file() for s in replication.params.stages)]


def deciding_profile(replication: Replication, claim: Claim) -> str:
    """The profile whose verdict heads the claims table: the most capable profile that can check the
    claim and has its stages' results; else the most capable with any results; else the default."""
    with_results = profiles_with_results(replication)
    for p in with_results:
        if p in claim.profiles and all(metrics_path(p, replication.name, s).is_file() for s in claim.stages):
            return p
    if with_results:
        return with_results[0]
    from acbench.config import default_profile
    return default_profile()

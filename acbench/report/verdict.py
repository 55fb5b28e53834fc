"""One claim against one profile's result: the reproduced value, the difference and the verdict."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acbench import paths
from acbench.config import Claim, Replication
from acbench.results import METRICS_FILE, ResultsError, read_metrics

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_CHECKABLE = "not checkable at this profile"


@dataclass(frozen=True)
class ClaimResult:
    replication: str
    claim: Claim
    profile: str
    reproduced: float | None
    verdict: str
    reason: str = ""
    spread: float | None = None  # standard deviation over seeds (metric ``<key>.std``), when several
    runs: int | None = None  # number of seeds (metric ``<key>.n``)

    @property
    def difference(self) -> float | None:
        return None if self.reproduced is None else self.reproduced - self.claim.value


def within_tolerance(claim: Claim, value: float) -> bool:
    if claim.direction == "higher_is_better":
        return value >= claim.value - claim.tolerance
    if claim.direction == "lower_is_better":
        return value <= claim.value + claim.tolerance
    return abs(value - claim.value) <= claim.tolerance


def metrics_path(profile: str, replication: str, stage: str) -> Path:
    return paths.stage_dir(profile, replication, stage) / METRICS_FILE


def judge(replication: Replication, claim: Claim, profile: str) -> ClaimResult:
    """Verdict of ``claim`` from ``profile``'s results (reading ``metrics.json`` of the claim's stage)."""
    if claim.result is None:
        return ClaimResult(replication.name, claim, profile, None, NOT_CHECKABLE,
                           claim.note or "no stage of this replication measures it")
    path = metrics_path(profile, replication.name, claim.result.stage)
    try:
        metrics = read_metrics(path)["metrics"]
    except ResultsError as exc:
        reason = f"stage '{claim.result.stage}' has not run at profile {profile}"
        if path.exists():
            reason = str(exc)
        return ClaimResult(replication.name, claim, profile, None, NOT_CHECKABLE, reason)
    value = metrics.get(claim.result.key)
    value = None if value is None else float(value)
    if profile not in claim.profiles:
        return ClaimResult(replication.name, claim, profile, value, NOT_CHECKABLE,
                           f"only {', '.join(claim.profiles)} runs can check it")
    if value is None:
        return ClaimResult(replication.name, claim, profile, None, NOT_REPRODUCED,
                           f"{path.relative_to(paths.repo_root())} has no metric {claim.result.key!r}")
    verdict = REPRODUCED if within_tolerance(claim, value) else NOT_REPRODUCED
    spread, runs = metrics.get(f"{claim.result.key}.std"), metrics.get(f"{claim.result.key}.n")
    return ClaimResult(replication.name, claim, profile, value, verdict,
                       spread=None if spread is None else float(spread), runs=None if runs is None else int(runs))


def profiles_with_results(replication: Replication) -> list[str]:
    """Profiles (paper first) for which at least one stage of the replication has written metrics."""
    return [p for p in reversed(paths.PROFILES)
            if any(metrics_path(p, replication.name, s).is_file() for s in replication.params.stages)]

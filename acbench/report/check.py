"""Check mode: fail when a checkable result leaves its tolerance, naming the claim.

At a profile, two gates apply to every replication:
1. each published claim that this profile can check must be ``reproduced`` (a claim whose stage
   has not run at this profile is a failure too: a check must not pass by having nothing to check);
2. the deterministic metrics must equal the committed reference of this profile, where one
   exists (``replications/<name>/reference/<profile>.json``; CI's smoke regression gate).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from acbench.config import Replication
from acbench.report.reference import GATED_PROFILES, compare, reference_path, unproduced_claims
from acbench.report.verdict import NOT_REPRODUCED, REPRODUCED, judge


@dataclass
class CheckOutcome:
    checked_claims: int = 0
    checked_references: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and (self.checked_claims + self.checked_references) > 0


def check(replications: list[Replication], profile: str) -> CheckOutcome:
    outcome = CheckOutcome()
    for rep in replications:
        for claim in rep.published.claims:
            if profile not in claim.profiles or claim.result is None:
                continue
            outcome.checked_claims += 1
            result = judge(rep, claim, profile)
            if result.verdict == REPRODUCED:
                continue
            if result.verdict == NOT_REPRODUCED and result.reproduced is not None:
                bound = {"match": f"{claim.value:g} ± {claim.tolerance:g}",
                         "higher_is_better": f"≥ {claim.value - claim.tolerance:g}",
                         "lower_is_better": f"≤ {claim.value + claim.tolerance:g}"}[claim.direction]
                outcome.failures.append(
                    f"claim {claim.id} ({rep.name}, profile {profile}): reproduced "
                    f"{result.reproduced:.4g}{claim.unit}, published {claim.value:g}{claim.unit}, "
                    f"needs {bound}: not reproduced")
            else:
                outcome.failures.append(f"claim {claim.id} ({rep.name}, profile {profile}): "
                                        f"{result.verdict}: {result.reason}")
        outcome.failures.extend(unproduced_claims(rep))
        if reference_path(rep, profile).is_file() or profile in GATED_PROFILES:
            outcome.checked_references += 1
            outcome.failures.extend(compare(rep, profile))
    return outcome


def format_outcome(outcome: CheckOutcome, profile: str) -> str:
    head = (f"check at profile {profile}: {outcome.checked_claims} claim(s) against published values, "
            f"{outcome.checked_references} reference file(s)")
    if outcome.failures:
        return "\n".join([head, f"FAILED ({len(outcome.failures)}):"] +
                         [f"  - {f}" for f in outcome.failures])
    if not outcome.ok:
        return head + "\nFAILED: nothing to check at this profile (no checkable claim, no reference)"
    return head + "\nOK"

"""Check mode: a regression gate on results, naming the claim or metric that moved.

At a profile, for every replication:
1. each claim's verdict and estimate must match the committed verdict record of that profile
   (``reference/<profile>.verdicts.json``, see :mod:`acbench.report.verdict_record`), where one exists;
2. the deterministic metrics must equal the committed reference of that profile
   (``reference/<profile>.json``, :mod:`acbench.report.reference`); CI's profile (``GATED_PROFILES``)
   must have one;
   every claim's ``result`` key must be produced by its stage;
3. with ``strict``, every claim the profile can check (``profiles`` in ``published.yaml``) must be
   *supported* — inconclusive, contradicted and not testable (stage not run, floor failed) all fail.
Nothing to check (no record, no reference, nothing strict) is a failure too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from acbench.config import Replication
from acbench.report.reference import GATED_PROFILES, compare, reference_path, unproduced_claims
from acbench.report.verdict import judge
from acbench.report.verdict_record import compare_verdicts, record_path
from acbench.stats import SUPPORTED


@dataclass
class CheckOutcome:
    checked_claims: int = 0
    checked_references: int = 0
    checked_records: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and (self.checked_claims + self.checked_references + self.checked_records) > 0


def check(replications: list[Replication], profile: str, strict: bool = False) -> CheckOutcome:
    outcome = CheckOutcome()
    for rep in replications:
        if strict:
            for claim in rep.published.claims:
                if profile not in claim.profiles:
                    continue
                outcome.checked_claims += 1
                result = judge(rep, claim, profile)
                if result.verdict != SUPPORTED:
                    outcome.failures.append(f"claim {claim.id} ({rep.name}, profile {profile}): {result.verdict}"
                                            + (f": {result.reason}" if result.reason else ""))
        outcome.failures.extend(unproduced_claims(rep))
        if record_path(rep, profile).is_file():
            outcome.checked_records += 1
            outcome.failures.extend(compare_verdicts(rep, profile))
        if reference_path(rep, profile).is_file() or profile in GATED_PROFILES:
            outcome.checked_references += 1
            outcome.failures.extend(compare(rep, profile))
    return outcome


def format_outcome(outcome: CheckOutcome, profile: str) -> str:
    head = (f"check at profile {profile}: {outcome.checked_records} verdict record(s), "
            f"{outcome.checked_references} reference file(s), {outcome.checked_claims} claim(s) held to 'supported'")
    if outcome.failures:
        return "\n".join([head, f"FAILED ({len(outcome.failures)}):"] + [f"  - {f}" for f in outcome.failures])
    if not outcome.ok:
        return head + "\nFAILED: nothing to check at this profile (no verdict record, no reference; try --strict)"
    return head + "\nOK"

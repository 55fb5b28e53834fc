"""Committed verdicts per profile: ``replications/<name>/reference/<profile>.verdicts.json``.

``acbench reference --profile P`` writes, for every claim, the verdict and the estimate with its
interval at P; ``acbench check --profile P`` fails when a claim's verdict differs from the record,
or its estimate moved by more than the claim's tolerance for it: ``check_tolerance`` of
``published.yaml`` where set, else half the committed 95% interval (a move inside the sampling
noise is not a regression), else (an exact quantity) 1e-6 relative. Estimates are compared for
exact claims and for claims the profile can check; elsewhere (e.g. trained smoke runs, which the
claims' ``profiles`` exclude and whose accuracies are not bit-stable across machines) only the
verdict is gated.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from acbench.config import Claim, Replication
from acbench.report.verdict import ClaimResult, judge
from acbench.results import ResultsError, write_json_atomic

EXACT_REL_TOL = 1e-6


def record_path(replication: Replication, profile: str) -> Path:
    return replication.folder / "reference" / f"{profile}.verdicts.json"


def freeze_verdicts(replication: Replication, profile: str) -> Path:
    claims = {c.id: judge(replication, c, profile).as_record() for c in replication.published.claims}
    path = record_path(replication, profile)
    write_json_atomic(path, {"profile": profile, "claims": claims})
    return path


def allowed_move(claim: Claim, committed: dict) -> float:
    if claim.check_tolerance is not None:
        return claim.check_tolerance
    low, high = committed.get("low"), committed.get("high")
    if low is not None and high is not None and high > low:
        return (high - low) / 2
    return EXACT_REL_TOL * max(1.0, abs(committed.get("estimate") or 0.0))


def regression(result: ClaimResult, committed: dict) -> str | None:
    """Why ``result`` differs from the committed record beyond tolerance, or None."""
    claim = result.claim
    if result.verdict != committed.get("verdict"):
        return f"verdict {result.verdict!r}, committed {committed.get('verdict')!r}" + \
               (f" ({result.reason})" if result.reason else "")
    if claim.compare is not None and result.profile not in claim.profiles:
        return None
    old, new = committed.get("estimate"), result.estimate
    if (old is None) != (new is None):
        return f"estimate {new}, committed {old}"
    if old is not None:
        tol = allowed_move(claim, committed)
        if not math.isclose(new, old, abs_tol=tol, rel_tol=0):
            return f"estimate {new:.4g} {claim.unit}, committed {old:.4g} (allowed move ±{tol:.3g})"
    return None


def compare_verdicts(replication: Replication, profile: str) -> list[str]:
    """Failures of the current verdicts at ``profile`` against the committed record (none without one)."""
    path = record_path(replication, profile)
    if not path.is_file():
        return []
    try:
        committed = json.loads(path.read_text(encoding="utf-8"))["claims"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ResultsError(f"{path}: not a verdict record ({exc}); regenerate it with "
                           f"`acbench reference {replication.name} --profile {profile}`") from exc
    failures = []
    for claim in replication.published.claims:
        if claim.id not in committed:
            failures.append(f"claim {claim.id} ({replication.name}, profile {profile}): not in {path}; "
                            f"regenerate it with `acbench reference {replication.name} --profile {profile}`")
            continue
        why = regression(judge(replication, claim, profile), committed[claim.id])
        if why:
            failures.append(f"claim {claim.id} ({replication.name}, profile {profile}): {why} in {path.name}")
    return failures

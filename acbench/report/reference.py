"""Committed reference metrics (the smoke regression gate).

``replications/<name>/reference/<profile>.json`` holds, per stage, the *deterministic* metrics of a
run at that profile (counts and FLOPs, never timings). ``acbench reference`` writes it from the
current results; ``acbench check`` compares fresh results with it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from acbench.config import Replication
from acbench.report.verdict import metrics_path
from acbench.results import ResultsError, read_metrics, write_json_atomic

REL_TOL = 1e-6
ABS_TOL = 1e-9


def reference_path(replication: Replication, profile: str) -> Path:
    return replication.folder / "reference" / f"{profile}.json"


def freeze(replication: Replication, profile: str) -> Path:
    """Write the reference from the current results of every stage (all stages must have run)."""
    frozen = {}
    for stage in replication.params.stages:
        data = read_metrics(metrics_path(profile, replication.name, stage))
        frozen[stage] = {k: data["metrics"][k] for k in data["deterministic"]}
    path = reference_path(replication, profile)
    write_json_atomic(path, {"profile": profile, "rel_tol": REL_TOL, "abs_tol": ABS_TOL,
                             "stages": frozen})
    return path


def compare(replication: Replication, profile: str) -> list[str]:
    """Failures (one message each) of the current results against the committed reference.

    Returns an empty list when there is no reference for ``profile``.
    """
    path = reference_path(replication, profile)
    if not path.is_file():
        return []
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc}); regenerate it with "
                           f"`acbench reference {replication.name} --profile {profile}`") from exc
    rel, abs_ = reference.get("rel_tol", REL_TOL), reference.get("abs_tol", ABS_TOL)
    claims_by_key: dict[tuple[str, str], list[str]] = {}
    for claim in replication.published.claims:
        if claim.result is not None:
            claims_by_key.setdefault((claim.result.stage, claim.result.key), []).append(claim.id)
    failures = []
    for stage, expected in reference["stages"].items():
        mpath = metrics_path(profile, replication.name, stage)
        if not mpath.is_file():
            failures.append(f"{replication.name}/{stage}: no results at {mpath} to compare with {path}")
            continue
        current = read_metrics(mpath)["metrics"]
        for key, want in sorted(expected.items()):
            claims = claims_by_key.get((stage, key), [])
            named = f" (claim {', '.join(claims)})" if claims else ""
            got = current.get(key)
            if got is None:
                failures.append(f"{replication.name}/{stage}: metric {key}{named} missing from {mpath}")
            elif not math.isclose(got, want, rel_tol=rel, abs_tol=abs_):
                failures.append(f"{replication.name}/{stage}: metric {key}{named} = {got:g}, "
                                f"reference {want:g} (rel. tolerance {rel:g}) in {path}")
    return failures

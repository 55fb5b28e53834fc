"""Committed reference metrics (the smoke regression gate), defined by the code, not by the file.

``replications/<name>/reference/<profile>.json`` holds only *values*: per stage, the deterministic
metrics of a run at that profile (counts and FLOPs, never timings). Everything that decides how
strict the gate is lives here: the tolerances (:data:`REL_TOL`, :data:`ABS_TOL`), the profiles
that must have a reference for every replication (:data:`GATED_PROFILES`), and the coverage: every
stage in the replication's ``params.yaml`` and every metric a stage marks deterministic must be in
the reference. A reference file that sets its own tolerances, leaves out a stage or a metric, or
names a stage that does not exist fails the check. ``acbench reference`` writes the reference from
the current results and refuses to drop a stage or metric that the committed one gates.
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
GATED_PROFILES = ("smoke",)  # CI's gate: every replication must have a reference at these
FILE_KEYS = {"profile", "stages"}


def reference_path(replication: Replication, profile: str) -> Path:
    return replication.folder / "reference" / f"{profile}.json"


def _load(replication: Replication, profile: str, path: Path) -> dict:
    fix = f"regenerate it with `acbench reference {replication.name} --profile {profile}`"
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})", fix) from exc
    if not isinstance(reference, dict) or not isinstance(reference.get("stages"), dict) or \
            not all(isinstance(v, dict) for v in reference["stages"].values()):
        raise ResultsError(f"{path}: expected {{'profile': ..., 'stages': {{stage: {{metric: number}}}}}}", fix)
    return reference


def freeze(replication: Replication, profile: str) -> Path:
    """Write the reference from the current results of every stage (all stages must have run).

    Refuses (:class:`ResultsError`) to drop a stage or metric gated by the existing reference:
    the gate only widens through a deliberate deletion of the file.
    """
    frozen = {}
    for stage in replication.params.stages:
        data = read_metrics(metrics_path(profile, replication.name, stage))
        frozen[stage] = {k: data["metrics"][k] for k in data["deterministic"]}
    path = reference_path(replication, profile)
    if path.is_file():
        old = _load(replication, profile, path)["stages"]
        dropped = [f"{stage}.{key}" for stage, metrics in old.items() for key in metrics
                   if key not in frozen.get(stage, {})]
        dropped += [stage for stage in old if stage not in frozen and not old[stage]]
        if dropped:
            raise ResultsError(f"{path}: the new reference would stop gating {', '.join(sorted(dropped)[:5])}"
                               + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""),
                               "a run that no longer produces a gated metric is a regression; if the removal is "
                               "intended, delete the reference file first (a reviewed change) and re-run this")
    write_json_atomic(path, {"profile": profile, "stages": frozen})
    return path


def compare(replication: Replication, profile: str) -> list[str]:
    """Failures (one message each) of the current results against the committed reference.

    Returns an empty list when ``profile`` has no reference and is not gated.
    """
    path = reference_path(replication, profile)
    name = replication.name
    if not path.is_file():
        if profile in GATED_PROFILES:
            return [f"{name}: no reference {path}; every replication is gated at profile {profile}: run all its "
                    f"stages, then `acbench reference {name} --profile {profile}`"]
        return []
    reference = _load(replication, profile, path)
    failures = []
    extra = sorted(set(reference) - FILE_KEYS)
    if extra:
        failures.append(f"{path}: sets {extra}; the gate's tolerances come from the code "
                        f"(acbench/report/reference.py: rel. {REL_TOL:g}, abs. {ABS_TOL:g}), not from the "
                        f"reference file: remove them")
    if reference.get("profile", profile) != profile:
        failures.append(f"{path}: is the reference of profile {reference.get('profile')!r}, not {profile!r}")
    stages = replication.params.stages
    failures += [f"{name}/{stage}: not covered by {path}; every stage is gated (regenerate the reference "
                 f"with `acbench reference {name} --profile {profile}`)" for stage in stages
                 if stage not in reference["stages"]]
    failures += [f"{name}/{stage}: in {path} but not a stage of {replication.params_path}; remove it"
                 for stage in reference["stages"] if stage not in stages]
    claims_by_key: dict[tuple[str, str], list[str]] = {}
    for claim in replication.published.claims:
        if claim.result is not None:
            claims_by_key.setdefault((claim.result.stage, claim.result.key), []).append(claim.id)
    for stage, expected in reference["stages"].items():
        if stage not in stages:
            continue
        mpath = metrics_path(profile, name, stage)
        if not mpath.is_file():
            failures.append(f"{name}/{stage}: no results at {mpath} to compare with {path}")
            continue
        data = read_metrics(mpath)
        current = data["metrics"]
        for key in sorted(set(data["deterministic"]) - set(expected)):
            failures.append(f"{name}/{stage}: deterministic metric {key} is not in {path}; every deterministic "
                            f"metric is gated (regenerate the reference)")
        for key, want in sorted(expected.items()):
            claims = claims_by_key.get((stage, key), [])
            named = f" (claim {', '.join(claims)})" if claims else ""
            got = current.get(key)
            if isinstance(want, bool) or not isinstance(want, (int, float)):
                failures.append(f"{name}/{stage}: metric {key} in {path} is {want!r}, not a number")
            elif got is None:
                failures.append(f"{name}/{stage}: metric {key}{named} missing from {mpath}")
            elif not math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL):
                failures.append(f"{name}/{stage}: metric {key}{named} = {got:g}, "
                                f"reference {want:g} (rel. tolerance {REL_TOL:g}) in {path}")
    return failures


def unproduced_claims(replication: Replication) -> list[str]:
    """Claims and health floors whose result key no run of their stage produces, at any profile with results.

    A stage declares the keys it produces by its ``metrics.json``; a claim pointing at a key that
    none of its stage's runs has (a typo, a renamed metric) would otherwise never be checked.
    Stages that have not run at any profile are not judged here (check mode reports them).
    """
    refs = [("claim", c.id, c.result) for c in replication.published.claims]
    refs += [("floor", f.id, f.result) for f in getattr(replication.published, "floors", None) or []
             if getattr(f, "result", None) is not None]
    failures = []
    for kind, ident, result in refs:
        if result is None:
            continue
        ran = {}
        for profile in ("smoke", "cpu", "paper"):
            mpath = metrics_path(profile, replication.name, result.stage)
            if mpath.is_file():
                ran[profile] = read_metrics(mpath)
        produced = lambda data: result.key in data["metrics"] or result.key in data.get("meta", {})
        if ran and not any(produced(data) for data in ran.values()):
            failures.append(f"{kind} {ident} ({replication.name}): result key {result.key!r} is produced by "
                            f"no run of stage {result.stage} (profiles {', '.join(ran)}); fix "
                            f"result.key in {replication.folder / 'published.yaml'}")
    return failures

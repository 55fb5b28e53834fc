"""Health floors (``floors:`` of ``published.yaml``): is the setup sound enough for a verdict?"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from acbench import paths
from acbench.config import Floor, Replication, ResultRef
from acbench.results import METRICS_FILE, ResultsError, read_metrics


@dataclass(frozen=True)
class FloorStatus:
    floor: Floor
    passed: bool | None  # None: cannot be evaluated at this profile (stage not run, value missing)
    text: str  # the measured value against the bound, or why it cannot be evaluated


def _value(profile: str, rep: Replication, ref: ResultRef) -> float | None:
    try:
        metrics = read_metrics(paths.stage_dir(profile, rep.name, ref.stage) / METRICS_FILE)["metrics"]
    except ResultsError:
        return None
    value = metrics.get(ref.key)
    return None if value is None else float(value)


def last_window_share_pct(curve: list[float], window: float) -> float:
    """Share (%) of the loss curve's whole decrease that its last window still made.

    The curve is cut into windows of ``window`` × its length (per-step losses are noisy; window means
    are not): 100·|mean(second-to-last) − mean(last)| / |mean(first) − mean(last)|. A converged run
    made almost all of its progress before the last window, so the share is small; a run stopped
    while still learning has a large one. (Per-epoch validation metrics are not recorded by the
    training loop; this reads the training-loss curve every trained stage keeps.)
    """
    w = max(1, int(len(curve) * window))
    if len(curve) < 3 * w:
        raise ValueError(f"a curve of {len(curve)} points is too short for three windows of {w}")
    first, before, last = (statistics.fmean(curve[:w]), statistics.fmean(curve[-2 * w:-w]),
                           statistics.fmean(curve[-w:]))
    total = abs(first - last)
    return 100 * abs(before - last) / total if total else float("inf")


def evaluate_floor(profile: str, rep: Replication, floor: Floor) -> FloorStatus:
    where = f"{floor.result.stage}:{floor.result.key}"
    if floor.kind == "converged":
        try:
            meta = read_metrics(paths.stage_dir(profile, rep.name, floor.result.stage) / METRICS_FILE)["meta"]
        except ResultsError:
            return FloorStatus(floor, None, f"stage '{floor.result.stage}' has not run at profile {profile}")
        curves = meta.get(floor.result.key)
        if isinstance(curves, list):
            curves = {floor.result.stage: curves}
        if isinstance(curves, dict) and floor.runs:
            curves = {k: v for k, v in curves.items() if k.rsplit("-s", 1)[0] in floor.runs}
        if not isinstance(curves, dict) or not curves or any(not isinstance(c, list) or len(c) < 3 for c in curves.values()):
            return FloorStatus(floor, None, f"{floor.result.stage} records no curve meta.{floor.result.key}"
                                            + (f" for runs {floor.runs}" if floor.runs else ""))
        try:
            shares = {name: last_window_share_pct([float(x) for x in c], floor.window) for name, c in curves.items()}
        except ValueError as exc:
            return FloorStatus(floor, None, f"{floor.result.stage}: {exc}")
        worst = max(shares, key=shares.get)
        which = "" if len(shares) == 1 else f" (worst of {len(shares)} runs: {worst})"
        return FloorStatus(floor, shares[worst] <= floor.bound,
                           f"the last {floor.window:.0%} of training made {shares[worst]:.1f}% of the loss decrease"
                           f"{which} (floor ≤ {floor.bound:g}%)")
    value = _value(profile, rep, floor.result)
    if value is None:
        return FloorStatus(floor, None, f"{where} not measured at profile {profile}")
    if floor.kind == "at_least":
        return FloorStatus(floor, value >= floor.bound, f"{where} = {value:.4g} (floor ≥ {floor.bound:g})")
    if floor.kind == "fraction_of_paper":
        bound = floor.fraction * floor.paper_value
        return FloorStatus(floor, value >= bound, f"{where} = {value:.4g} (floor ≥ {floor.fraction:g} × "
                                                  f"{floor.paper_value:g} = {bound:.4g})")
    other = _value(profile, rep, floor.versus)
    if other is None:
        return FloorStatus(floor, None, f"{floor.versus.stage}:{floor.versus.key} not measured at profile {profile}")
    gap = abs(value - other)
    return FloorStatus(floor, gap <= floor.bound, f"{where} = {value:.4g} differs from {floor.versus.stage}:"
                                                  f"{floor.versus.key} = {other:.4g} by {gap:.4g} (floor ≤ {floor.bound:g})")


def floors_of(rep: Replication, claim_id: str) -> list[Floor]:
    return [f for f in rep.published.floors if claim_id in f.claims]

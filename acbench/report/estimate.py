"""A claim's estimate at a profile: from per-item (or per-round) records when they exist, else the
point value its stage's metrics hold (no interval).

The statistics of :class:`acbench.config.Compare` are written once here as vectorised functions of
the conditions' accuracies (fractions in [0, 1]) and handed to :mod:`acbench.stats.bootstrap`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from acbench import paths
from acbench.config import Claim, Compare, Condition, Replication
from acbench.items import ItemsError, read_records, runs_of
from acbench.results import METRICS_FILE, read_metrics
from acbench.stats import Estimate, paired_bootstrap, rounds_bootstrap
from acbench.stats.curve import drop_bands, prunable_from_bands
from acbench.stats.folds import fold_labels


class EstimateError(ValueError):
    """The records a claim needs are inconsistent (different items, unpaired seeds)."""


@dataclass(frozen=True)
class PointOnly:
    """A value read from metrics where no per-item records exist (results that predate them)."""

    value: float | None
    why: str


def _stage(profile: str, rep: Replication, stage: str) -> tuple[dict, dict]:
    data = read_metrics(paths.stage_dir(profile, rep.name, stage) / METRICS_FILE)
    return data["metrics"], data["items"]


def _outcomes(profile: str, rep: Replication, stage: str, names: dict) -> tuple[list[str], np.ndarray]:
    """(item ids, outcomes (runs, items)) of the named records of a stage, runs in key order."""
    folder = paths.stage_dir(profile, rep.name, stage)
    _, index = _stage(profile, rep, stage)
    ids, first, rows = None, None, []
    for key in sorted(names, key=lambda k: (k is not None, k)):
        records = read_records(folder, index, names[key])
        these = [r["item"] for r in records]
        if ids is not None and these != ids:
            raise EstimateError(f"{folder}: record {names[key]} is not on the same items as {first}")
        ids, first = these, first or names[key]
        rows.append([r["correct"] == "1" for r in records])
    return ids, np.array(rows, dtype=np.float64)


def _condition(profile: str, rep: Replication, cond: Condition) -> tuple[list[str], np.ndarray, list]:
    _, index = _stage(profile, rep, cond.stage)
    names = runs_of(index, cond.run)
    if not names:
        raise KeyError(cond.run)
    if None in names and len(names) > 1:
        raise EstimateError(f"{cond.stage}: run {cond.run!r} has both a seedless record and seeded ones")
    ids, mat = _outcomes(profile, rep, cond.stage, names)
    return ids, mat, sorted(k for k in names if k is not None)


def _align(conds: dict[str, tuple[list[str], np.ndarray, list]]) -> dict[str, np.ndarray]:
    """Put every condition on the first one's item order and pair seeds; errors name what differs.
    Items pooled over folds (ids ``fold<k>/...``, :mod:`acbench.stats.folds`) keep their order, so
    :func:`_groups` of the first condition labels the aligned columns."""
    first = next(iter(conds))
    ids0 = conds[first][0]
    order0 = {i: k for k, i in enumerate(ids0)}
    seed_sets = {tuple(s) for _, _, s in conds.values() if len(s) > 1}
    if len(seed_sets) > 1:
        raise EstimateError(f"seeds differ between the compared runs: {sorted(seed_sets)} (pairing needs the same seeds)")
    out = {}
    for name, (ids, mat, _) in conds.items():
        if sorted(ids) != sorted(ids0):
            raise EstimateError(f"{name} is not evaluated on the same items as {first} "
                                f"({len(ids)} vs {len(ids0)} items)")
        perm = np.array([order0[i] for i in ids])
        aligned = np.empty_like(mat)
        aligned[:, perm] = mat
        out[name] = aligned
    return out


def _groups(conds: dict[str, tuple[list[str], np.ndarray, list]]):
    """The fold of every item (in the first condition's order), or None for one fold."""
    return fold_labels(next(iter(conds.values()))[0])


def _statistic(compare: Compare):
    s = compare.statistic
    if s == "accuracy":
        return lambda acc: 100 * acc["a"]
    if s == "difference":
        return lambda acc: 100 * (acc["a"] - acc["b"])
    if s == "smallest_difference":
        n = len(compare.pairs)
        return lambda acc: np.min(np.stack([100 * (np.asarray(acc[f"a{i}"]) - np.asarray(acc[f"b{i}"]))
                                            for i in range(n)]), axis=0)
    if s == "recovery":
        return lambda acc: 100 * (acc["a"] - acc["b"]) / (acc["reference"] - acc["b"])
    raise ValueError(f"no accuracy statistic {s!r}")


def _curve(index: dict, run: str) -> list[tuple[float, str]]:
    pattern = re.compile(rf"^{re.escape(run)}@(\d+(?:\.\d+)?)$")
    points = sorted((float(m.group(1)) / 100, name) for name in index if (m := pattern.match(name)))
    return points


def speedup(base, pruned, axis=-1):
    """100·(median time of the base / median time of the pruned model − 1): the throughput gain."""
    return 100 * (np.median(base, axis=axis) / np.median(pruned, axis=axis) - 1)


def _point_from_metrics(profile: str, rep: Replication, claim: Claim) -> PointOnly:
    """The value the stage's metrics hold: ``result`` if declared, else from the per-seed accuracies."""
    if claim.result is not None:
        metrics, _ = _stage(profile, rep, claim.result.stage)
        value = metrics.get(claim.result.key)
        return PointOnly(None if value is None else float(value),
                         "" if value is not None else f"{claim.result.stage} has no metric {claim.result.key!r}")
    compare = claim.compare
    if compare.statistic in ("speedup", "prunable_share"):
        return PointOnly(None, "no per-item records and no result metric")

    def mean_accuracy(cond: Condition) -> float | None:
        metrics, _ = _stage(profile, rep, cond.stage)
        seeded = [v for k, v in metrics.items() if re.fullmatch(rf"{re.escape(cond.run)}\.accuracy@s\d+", k)]
        if seeded:
            return float(np.mean(seeded)) / 100
        key = "accuracy" if cond.run == "test" else (f"accuracy@{cond.run.split('@', 1)[1]}" if "@" in cond.run else None)
        return None if key is None or key not in metrics else float(metrics[key]) / 100

    named = {"a": compare.a, "b": compare.b, "reference": compare.reference}
    for i, (a, b) in enumerate(compare.pairs or []):
        named[f"a{i}"], named[f"b{i}"] = a, b
    acc = {k: mean_accuracy(c) for k, c in named.items() if c is not None}
    if any(v is None for v in acc.values()):
        return PointOnly(None, "no per-item records and no per-seed accuracy metrics")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(_statistic(compare)(acc))
    return PointOnly(value if np.isfinite(value) else None, "")


def estimate(profile: str, rep: Replication, claim: Claim) -> Estimate | PointOnly:
    """The claim's estimate: an :class:`Estimate` (with a 95% interval) from records, else a :class:`PointOnly`.

    An exact claim (no ``compare``) is the degenerate interval [value, value].
    """
    if claim.compare is None:
        point = _point_from_metrics(profile, rep, claim)
        if point.value is None:
            return point
        return Estimate(point.value, point.value, point.value, "exact (arithmetic quantity)")
    compare = claim.compare
    try:
        if compare.statistic == "speedup":
            rounds = {}
            for name, cond in (("a", compare.a), ("b", compare.b)):
                _, index = _stage(profile, rep, cond.stage)
                rows = read_records(paths.stage_dir(profile, rep.name, cond.stage), index, cond.run)
                rounds[name] = np.array([float(r["seconds"]) for r in rows])
            return rounds_bootstrap(rounds, speedup)
        if compare.statistic == "prunable_share":
            _, index = _stage(profile, rep, compare.a.stage)
            curve = _curve(index, compare.a.run)
            if len(curve) < 2 or curve[0][0] != 0:
                raise KeyError(compare.a.run)
            conds = {name: _condition(profile, rep, Condition(stage=compare.a.stage, run=name)) for _, name in curve}
            groups = _groups(conds)
            bands = drop_bands(_align(conds), curve, groups)
            shares = [100 * f for f, _ in curve]
            value, low, high = prunable_from_bands(shares, bands, compare.drop_points)
            return Estimate(value, low, high, "prunable share from 95% bands of the drop at each step ("
                            + bands[1].method + "): low = largest share significantly within the line, "
                            "high = largest before a step significantly beyond it", bands[1].items,
                            bands[1].seeds, bands[1].resamples)
        named = {"a": compare.a, "b": compare.b, "reference": compare.reference}
        for i, (a, b) in enumerate(compare.pairs or []):
            named[f"a{i}"], named[f"b{i}"] = a, b
        conds = {k: _condition(profile, rep, c) for k, c in named.items() if c is not None}
        return paired_bootstrap(_align(conds), _statistic(compare), groups=_groups(conds))
    except (KeyError, ItemsError) as exc:
        if isinstance(exc, ItemsError) and "lists no per-item record" not in str(exc):
            raise
        point = _point_from_metrics(profile, rep, claim)
        return PointOnly(point.value, point.why or "no per-item data")

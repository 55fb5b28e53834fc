"""Collect one dataset's pruning sweep into its table, its plots and the numbers the claims are judged on.

Reads the teacher, prune-only and student stages' ``metrics.json`` (never re-runs anything). Claim
metrics, for the ratio ``claim_ratio``:
- ``kd_drop_pts`` / ``ft_drop_pts``: teacher accuracy − pruned-student accuracy, mean over seeds
  (``.std`` beside it: the seeds' standard deviation);
- ``kd_recovery_pct``: the share of the prune-only loss that KD wins back,
  100·(KD − prune only)/(teacher − prune only).
The drops and the recovered share are written for every point (``@<ratio>``), not only ``claim_ratio``.
Also, where the stages exist: the ratio-0 control of each point (``control.accuracy.mean@<ratio>``,
the same recovery with no head masked), the one-shot reading at its ratio (``reading_stage``), the
pooled five-fold rows (``pool_stage``) and the share of the distillation loss each term carries.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from acbench.config import Claim, Strict
from acbench.experiments.stage_io import sibling_stage
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage

TABLE = True
PLOTS = ("accuracy.png",)

from .prune_only import ratio_tag


class Point(Strict):
    stage: SiblingStage
    ratio: float = Field(ge=0, le=1)


class Config(Strict):
    dataset: str
    teacher_stage: SiblingStage
    prune_stage: SiblingStage
    points: list[Point] = Field(min_length=1)
    ablation_stage: SiblingStage | None = None
    reading_stage: SiblingStage | None = Field(None, description="the same variants trained with reading one_shot")
    pool_stage: SiblingStage | None = Field(None, description="the rows pooled over folds (stages/pool.py)")
    claim_ratio: float = 0.3
    finetune_variant: str = "finetune"
    kd_variant: str = "kd"


def _read(out_dir: Path, stage: str) -> dict:
    return read_metrics(sibling_stage(out_dir, stage) / METRICS_FILE)["metrics"]


def _pm(metrics: dict, key: str) -> str:
    mean, std, n = metrics.get(f"{key}.mean"), metrics.get(f"{key}.std"), metrics.get(key.replace(".accuracy", ".seeds"))
    if mean is None:
        return "–"
    return f"{mean:.1f} ± {std:.1f} (n={int(n)})" if n and n > 1 else f"{mean:.1f}"


def run(config: Config, out_dir: Path) -> dict[str, float]:
    teacher = _read(out_dir, config.teacher_stage)
    prune = _read(out_dir, config.prune_stage)
    metrics: dict[str, float] = {"teacher.accuracy": teacher["accuracy"]}
    notes: list[str] = []
    undefined: dict[str, str] = {}
    rows = ["| heads pruned | removed | prune only | prune + fine-tune | prune + KD | params (whole / encoder) | "
            "encoder FLOPs | speed-up b1 / b32 |", "|---|---|---|---|---|---|---|---|"]
    for point in sorted(config.points, key=lambda p: p.ratio):
        m, tag = _read(out_dir, point.stage), ratio_tag(point.ratio)
        metrics[f"prune_only.accuracy@{tag}"] = prune[f"accuracy@{tag}"]
        for variant, name in ((config.finetune_variant, "finetune"), (config.kd_variant, "kd")):
            for stat in ("mean", "std"):
                metrics[f"{name}.accuracy.{stat}@{tag}"] = m[f"{variant}.accuracy.{stat}"]
        metrics[f"speedup_pct.b32@{tag}"] = m.get("speedup_pct.b32", float("nan"))
        metrics[f"latency_ms.b32@{tag}"] = m.get("latency_ms.b32", float("nan"))
        rows.append(f"| {point.ratio:.0%} | {int(m[f'{config.kd_variant}.heads_removed'])} | "
                    f"{prune[f'accuracy@{tag}']:.1f} | {_pm(m, f'{config.finetune_variant}.accuracy')} | "
                    f"{_pm(m, f'{config.kd_variant}.accuracy')} | −{m['params.whole_model_reduction_pct']:.1f}% / "
                    f"−{m['params.encoder_reduction_pct']:.1f}% | −{m['flops.encoder_reduction_pct']:.1f}% | "
                    f"{m.get('speedup_pct.b1', float('nan')):+.1f}% / {m.get('speedup_pct.b32', float('nan')):+.1f}% |")
        base, lost = teacher["accuracy"], teacher["accuracy"] - prune[f"accuracy@{tag}"]
        for variant, name in ((config.kd_variant, "kd"), (config.finetune_variant, "ft")):
            metrics[f"{name}_drop_pts@{tag}"] = base - m[f"{variant}.accuracy.mean"]
            metrics[f"{name}_drop_pts@{tag}.std"] = m[f"{variant}.accuracy.std"]
            metrics[f"{name}_drop_pts@{tag}.n"] = m[f"{variant}.seeds"]
        metrics[f"prune_only_drop_pts@{tag}"] = lost
        if lost > 0:
            metrics[f"kd_recovery_pct@{tag}"] = 100 * (m[f"{config.kd_variant}.accuracy.mean"] - prune[f"accuracy@{tag}"]) / lost
        else:  # a share of nothing: declared in meta with the reason (the claim is then not testable)
            undefined[f"kd_recovery_pct@{tag}"] = f"pruning alone cost nothing at {point.ratio:.0%} ({lost:+.2f} points)"
        if "control.accuracy.mean" in m:
            metrics[f"control.accuracy.mean@{tag}"] = m["control.accuracy.mean"]
            notes.append(f"ratio-0 control beside {point.ratio:.0%} (the same recovery, no head masked): "
                         f"{_pm(m, 'control.accuracy')} against the teacher's {base:.1f}")
        for key, value in m.items():
            if key.startswith(f"{config.kd_variant}.loss_share."):
                metrics[f"kd.{key.split('.', 1)[1]}@{tag}"] = value
    metrics[f"latency_ms.b32@{ratio_tag(0.0)}"] = prune.get(f"latency_ms.b32@{ratio_tag(0.0)}", float("nan"))
    lines = [f"**{config.dataset}**: teacher accuracy {teacher['accuracy']:.1f}% on {int(teacher['test_problems'])} "
             f"test problems (mean ± std over seeds where n > 1).", "", *rows]
    lines += [f"- {note}" for note in notes]
    shares: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith("kd.loss_share."):
            name, tag = key.rsplit("@", 1)
            shares.setdefault(tag, {})[name.split(".")[2]] = value
    if shares:
        lines += ["", "Share of the distillation objective per term (KD, mean over training):", ""]
        lines += [f"- {float(tag):.0%}: " + ", ".join(f"{term} {v:.1%}" for term, v in sorted(terms.items()))
                  for tag, terms in sorted(shares.items())]
    if config.reading_stage:
        r = _read(out_dir, config.reading_stage)
        tag = ratio_tag(config.claim_ratio)
        lines += ["", f"Readings of \"dynamic\" at {config.claim_ratio:.0%}: one-shot (score the teacher once, "
                  "remove, recover) against progressive (the rows above):", "",
                  "| reading | prune + fine-tune | prune + KD |", "|---|---|---|"]
        for name, src in (("progressive", _read(out_dir, next(p.stage for p in config.points
                                                              if abs(p.ratio - config.claim_ratio) < 1e-9))),
                          ("one_shot", r)):
            lines.append(f"| {name} | {_pm(src, f'{config.finetune_variant}.accuracy')} | "
                         f"{_pm(src, f'{config.kd_variant}.accuracy')} |")
        for variant, name in ((config.finetune_variant, "finetune"), (config.kd_variant, "kd")):
            metrics[f"one_shot.{name}.accuracy.mean@{tag}"] = r[f"{variant}.accuracy.mean"]
    if config.pool_stage:
        pooled = _read(out_dir, config.pool_stage)
        for key in ("teacher.accuracy", "prune.accuracy", f"{config.finetune_variant}.accuracy",
                    f"{config.kd_variant}.accuracy", "control.accuracy"):
            if key in pooled:
                metrics[f"pooled.{key}"] = pooled[key]
        lines += ["", (sibling_stage(out_dir, config.pool_stage) / "table.md").read_text().rstrip()]
    if config.ablation_stage:
        a = _read(out_dir, config.ablation_stage)
        variants = sorted({k.split(".")[0] for k in a if k.endswith(".accuracy.mean")})
        lines += ["", f"Ablations at {config.claim_ratio:.0%} (all with KD unless named otherwise):", "",
                  "| variant | accuracy | drop vs teacher |", "|---|---|---|"]
        for v in variants:
            metrics[f"ablation.{v}.accuracy.mean"] = a[f"{v}.accuracy.mean"]
            metrics[f"ablation.{v}.accuracy.std"] = a[f"{v}.accuracy.std"]
            lines.append(f"| {v} | {_pm(a, f'{v}.accuracy')} | {teacher['accuracy'] - a[f'{v}.accuracy.mean']:.1f} |")
    metrics = {k: v for k, v in metrics.items() if v == v}  # drop NaN (a latency not measured)
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics, [], undefined)
    return metrics


def plot(config: Config, metrics: dict[str, float], claims: list[Claim], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = sorted(p.ratio for p in config.points)
    xs = [0.0] + ratios
    teacher = metrics["teacher.accuracy"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(xs, [teacher] + [metrics[f"prune_only.accuracy@{ratio_tag(r)}"] for r in ratios], "o-", label="prune only")
    for name, label in (("finetune", "prune + fine-tune"), ("kd", "prune + KD")):
        means = [teacher] + [metrics[f"{name}.accuracy.mean@{ratio_tag(r)}"] for r in ratios]
        stds = [0.0] + [metrics[f"{name}.accuracy.std@{ratio_tag(r)}"] for r in ratios]
        left.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
    for claim in claims:
        if claim.result and claim.result.key.startswith("kd_drop_pts"):
            left.plot([config.claim_ratio], [teacher - claim.value], "r*", markersize=14,
                      label=f"published: −{claim.value} pts with KD")
    left.set(xlabel="fraction of heads pruned", ylabel="answer accuracy (%)", title=f"{config.dataset}: accuracy vs ratio")
    left.legend(fontsize=8)
    lat = [(metrics.get(f"latency_ms.b32@{ratio_tag(r)}"), metrics[f"kd.accuracy.mean@{ratio_tag(r)}"], r) for r in ratios]
    lat = [(x, y, r) for x, y, r in lat if x is not None]
    if f"latency_ms.b32@{ratio_tag(0.0)}" in metrics:
        lat = [(metrics[f"latency_ms.b32@{ratio_tag(0.0)}"], teacher, 0.0)] + lat
    right.plot([x for x, _, _ in lat], [y for _, y, _ in lat], "o-")
    for x, y, r in lat:
        right.annotate(f"{r:.0%}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    right.set(xlabel="encoder latency, batch 32 (ms, median)", ylabel="accuracy, prune + KD (%)",
              title="accuracy vs latency")
    fig.tight_layout()
    path = out_dir / "accuracy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

"""Accuracy of the teacher as heads are pruned, without retraining, for several importance scores.

Michel et al.'s Figure 3 procedure (``methods.iterative_pruning``): every step re-scores the heads
still present on training batches and masks the lowest ``step_fraction`` of all heads (global
ranking, at least ``min_heads_per_layer`` kept per layer), then measures test answer accuracy. Masked
heads are equivalent to removed ones (a property the head-removal tests check), so the curve uses
gates. Scores:

- ``michel``: |∂L/∂gate| summed over the batches (task loss), ℓ2-normalised per layer (Michel eq. 2);
- ``combined``: arXiv 2511.17577's α·w + (1−α)·H (``methods.head_importance``), with the pruned heads
  left out of each layer's normalisation.

Every teacher of ``teachers`` (one per ASDiv-A fold) gets its own curve; the records join the folds
(item ids ``fold<k>/<id>``, :mod:`acbench.stats.folds`), so each point's accuracy is over all their
test problems. At every step the drop from the unpruned point gets a 95% band (paired bootstrap over
folds and items within folds, :mod:`acbench.stats.curve`). ``prunable_pct``: the largest percentage
of heads pruned such that the pooled accuracy stays within ``drop_pts`` of the unpruned model at that
point and at every smaller one; ``prunable_pct.low``: the same with the drop *significantly* below
the line (the band's upper end), the share the claim is decided on; ``prunable_pct.high``: the
largest share before a step whose drop is significantly beyond it.
"""
from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from acbench.config import Strict
from acbench.experiments.mwp.teacher import solver_data
from acbench.items import Outcomes
from acbench.stats.curve import drop_bands, prunable_from_bands
from acbench.stats.folds import fold_item, fold_labels
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.items import ItemLog
from acbench.stage_refs import StageRef
from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import collate
from acbench.solver.io import set_threads
from acbench.solver.importance import ImportanceSettings, encoder_entropy
from acbench.solver.losses import task_loss
from methods.head_gates import HeadGates
from methods.head_importance import combined_score, normalize_per_layer, weight_norms
from methods.iterative_pruning import as_plan, iterative_pruning

from .student import stage_of

TABLE = True
PLOTS = ("pruning_curve.png",)
ITEMS = True  # per-item records under items/ (acbench.items)


class Score(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    importance: ImportanceSettings

    def model_post_init(self, __context) -> None:
        if self.importance.kind not in ("michel", "combined"):
            raise ValueError(f"score {self.name!r}: kind must be michel or combined, got {self.importance.kind!r}")


class Config(Strict):
    teachers: list[StageRef] = Field(min_length=1, description="<replication>/<stage> of mwp_teacher stages, "
                                     "one per fold")
    scores: list[Score] = Field(min_length=1)
    step_fraction: float = Field(0.1, gt=0, le=0.5)
    steps: int = Field(9, ge=1)
    score_batches: int = Field(8, ge=1)
    score_batch_size: int = Field(16, ge=1)
    drop_pts: float = Field(2.0, ge=0, description="accuracy loss still counted as 'little' for prunable_pct")
    eval_batch: int = Field(64, ge=1)
    threads: int | None = Field(None, ge=1)


def pct_tag(fraction: float) -> str:
    return f"{100 * fraction:.0f}"


def head_scores(importance: ImportanceSettings, model, batches, pruned: set[tuple[int, int]]) -> torch.Tensor:
    """(layers, heads) importance of ``model`` (its pruned heads already gated off); pruned heads NaN."""
    probe = HeadGates(model.encoder, requires_grad=importance.kind == "michel")
    grad, entropy = None, None
    try:
        for batch in batches:
            if importance.kind == "michel":
                task_loss(model(batch).logits, batch["labels"]).backward()
                g = probe.take_grad()
                grad = g if grad is None else grad + g
            else:
                e = encoder_entropy(model, batch)
                entropy = e if entropy is None else entropy + e
    finally:
        probe.remove()
        model.zero_grad(set_to_none=True)
    raw = grad if importance.kind == "michel" else entropy / len(batches)
    raw = raw.clone().float()
    for layer, head in pruned:
        raw[layer, head] = float("nan")
    if importance.kind == "michel":
        return normalize_per_layer(raw, "l2")
    p = importance.params  # the combined score's: alpha, norm_p, entropy_sign, normalize
    w = weight_norms(model.encoder, p.norm_p)
    for layer, head in pruned:
        w[layer, head] = float("nan")
    return combined_score(w, raw, p.alpha, p.entropy_sign, p.normalize)


def fold_curves(config: Config, teacher_dir: Path) -> tuple[dict, dict, int, int, int]:
    """One fold: ``{score: [(fraction, Outcomes)]}`` (ids prefixed by the fold), the pruned-head plans, and
    (fold, heads in all, heads per step)."""
    teacher, data, train, test = solver_data(teacher_dir)
    fold = data.fold or 0
    size = config.score_batch_size
    batches = [collate(train[i * size:(i + 1) * size], teacher.vocab) for i in range(config.score_batches)
               if train[i * size:(i + 1) * size]]
    layers, heads = teacher.encoder.config.num_hidden_layers, teacher.encoder.config.num_attention_heads
    step = max(1, round(config.step_fraction * layers * heads))
    curves: dict[str, list] = {}
    plans: dict[str, dict] = {}
    for score in config.scores:
        model = copy.deepcopy(teacher).eval()
        gates = HeadGates(model.encoder)
        points = curves.setdefault(score.name, [])

        def measure(fraction, pruned, name=score.name, model=model, points=points):
            outcomes = answer_outcomes(model, test, config.eval_batch, f"fold {fold} {name} {fraction:.0%} pruned")
            points.append((fraction, Outcomes(tuple(fold_item(fold, i) for i in outcomes.ids), outcomes.correct,
                                              outcomes.predictions)))
            plans[f"fold{fold}/{name}@{pct_tag(fraction)}"] = {str(k): v for k, v in as_plan(pruned).items()}
            return outcomes.accuracy

        iterative_pruning(layers, heads, step, config.steps,
                          lambda pruned, s=score, m=model: head_scores(s.importance, m, batches, pruned),
                          lambda pruned, g=gates: g.set_masked(as_plan(pruned)), measure,
                          score.importance.min_heads_per_layer)
    return curves, plans, fold, layers * heads, step


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    started = time.perf_counter()
    per_fold, plans, shape, teacher_accuracy = [], {}, None, []
    for ref in config.teachers:
        teacher_accuracy.append(read_metrics(stage_of(out_dir, ref) / METRICS_FILE)["metrics"]["accuracy"])
        curves, fold_plans, fold, total, step = fold_curves(config, stage_of(out_dir, ref))
        if shape is not None and shape != (total, step):
            raise ValueError(f"teacher {ref} has {total} heads ({step} per step), the first teacher {shape}")
        shape = (total, step)
        per_fold.append((fold, curves))
        plans.update(fold_plans)
    if len({f for f, _ in per_fold}) != len(per_fold):
        raise ValueError(f"teachers {config.teachers} repeat a fold")
    total, step = shape
    metrics: dict[str, float] = {}
    items = ItemLog()
    for score in config.scores:
        fractions = [f for f, _ in per_fold[0][1][score.name]]
        pooled = []
        for k, fraction in enumerate(fractions):
            parts = [curves[score.name][k][1] for _, curves in per_fold]
            joined = Outcomes(tuple(i for p in parts for i in p.ids), tuple(c for p in parts for c in p.correct),
                              tuple(x for p in parts for x in p.predictions))
            name = f"{score.name}@{100 * fraction:.6g}"  # exact share: the curve's x
            items.add_outcomes(name, joined)
            pooled.append((fraction, name, joined))
        for fold, curves in per_fold:
            for fraction, outcomes in curves[score.name]:
                metrics[f"fold{fold}.{score.name}.accuracy@{pct_tag(fraction)}"] = outcomes.accuracy
        outcomes = {name: np.array(o.correct, dtype=np.float64) for _, name, o in pooled}
        bands = drop_bands(outcomes, [(f, n) for f, n, _ in pooled], fold_labels(pooled[0][2].ids))
        for (fraction, _, o), band in zip(pooled, bands):
            tag = pct_tag(fraction)
            metrics[f"{score.name}.accuracy@{tag}"] = o.accuracy
            metrics.update({f"{score.name}.drop@{tag}": band.value, f"{score.name}.drop_low@{tag}": band.low,
                            f"{score.name}.drop_high@{tag}": band.high})
        value, low, high = prunable_from_bands([100 * f for f, _, _ in pooled], bands, config.drop_pts)
        metrics.update({f"{score.name}.prunable_pct": value, f"{score.name}.prunable_pct.low": low,
                        f"{score.name}.prunable_pct.high": high,
                        f"{score.name}.mean_accuracy": statistics.fmean(o.accuracy for _, _, o in pooled)})
    metrics["teacher.accuracy"] = statistics.fmean(teacher_accuracy)  # mean over folds (the floor's reading)
    metrics["heads_total"] = total
    metrics["heads_per_step"] = step
    metrics["folds"] = len(per_fold)
    metrics["items"] = len(pooled[0][2].ids)
    metrics["stage_seconds"] = time.perf_counter() - started
    write_text_atomic(out_dir / "table.md", table(config, metrics, total, step))
    write_metrics(out_dir, metrics, ["heads_total", "heads_per_step", "folds", "items"],
                  {"pruned_heads": plans, "teachers": list(config.teachers)}, items.write(out_dir))
    return metrics


def _fractions(metrics: dict[str, float], name: str) -> list[str]:
    tags = [k.split("@")[1] for k in metrics if k.startswith(f"{name}.accuracy@")]
    return sorted(tags, key=float)


def _signed(points: float) -> str:
    """+1.0 / −0.7 / 0.0 (a typographic minus; no sign on zero, so a rounded −0.0 reads 0.0)."""
    text = f"{points:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text.replace("-", "−")


def table(config: Config, metrics: dict[str, float], total: int, step: int) -> str:
    names = [s.name for s in config.scores]
    tags = _fractions(metrics, names[0])
    lines = [f"Iterative pruning without retraining, {step} of {total} heads per step, {int(metrics['folds'])} "
             f"fold(s), {int(metrics['items'])} test problems; answer accuracy (%) and its drop (unpruned − pruned, "
             "points; negative: the pruned model is better) [95% band: folds, items within folds].", "",
             "| heads pruned | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for tag in tags:
        lines.append(f"| {tag}% | " + " | ".join(
            f"{metrics[f'{n}.accuracy@{tag}']:.1f} (drop {_signed(metrics[f'{n}.drop@{tag}'])} "
            f"[{_signed(metrics[f'{n}.drop_low@{tag}'])}, {_signed(metrics[f'{n}.drop_high@{tag}'])}])"
            for n in names) + " |")
    lines.append(f"| prunable (drop ≤ {config.drop_pts:g} pts): point [significantly within, before significantly beyond] | "
                 + " | ".join(f"{metrics[f'{n}.prunable_pct']:.0f}% [{metrics[f'{n}.prunable_pct.low']:.0f}%, "
                              f"{metrics[f'{n}.prunable_pct.high']:.0f}%]" for n in names) + " |")
    return "\n".join(lines) + "\n"


def plot(config: Config, metrics: dict[str, float], claims, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    base = metrics[f"{config.scores[0].name}.accuracy@0"]
    for score in config.scores:
        tags = _fractions(metrics, score.name)
        x = [float(t) for t in tags]
        (line,) = ax.plot(x, [metrics[f"{score.name}.accuracy@{t}"] for t in tags], "o-", label=score.name)
        ax.fill_between(x, [base - metrics[f"{score.name}.drop_high@{t}"] for t in tags],
                        [base - metrics[f"{score.name}.drop_low@{t}"] for t in tags], color=line.get_color(),
                        alpha=0.2, label=f"{score.name}: 95% band of the drop")
    ax.axhline(base - config.drop_pts, color="grey", linestyle=":", label=f"unpruned − {config.drop_pts:g} pts")
    for claim in claims:
        if claim.result and claim.result.key.endswith("prunable_pct"):
            ax.axvline(claim.value, color="red", linestyle="--", label=f"published: {claim.value:g}% prunable (BERT)")
    ax.set(xlabel="heads pruned (%)", ylabel="answer accuracy (%)",
           title=f"Pruning without retraining ({int(metrics['folds'])} folds, {int(metrics['items'])} problems)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "pruning_curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

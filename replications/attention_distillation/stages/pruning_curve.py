"""Accuracy of the teacher as heads are pruned, without retraining, for several importance scores.

Michel et al.'s Figure 3 procedure (``methods.iterative_pruning``): every step re-scores the heads
still present on training batches and masks the lowest ``step_fraction`` of all heads (global
ranking, at least ``min_heads_per_layer`` kept per layer), then measures test answer accuracy. Masked
heads are equivalent to removed ones (a property the head-removal tests check), so the curve uses
gates. Scores:

- ``michel``: |∂L/∂gate| summed over the batches (task loss), ℓ2-normalised per layer (Michel eq. 2);
- ``combined``: arXiv 2511.17577's α·w + (1−α)·H (``methods.head_importance``), with the pruned heads
  left out of each layer's normalisation.

``prunable_pct``: the largest percentage of heads pruned such that accuracy stays within
``drop_pts`` of the unpruned model at that point and at every smaller one.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from acbench.config import Strict
from acbench.experiments.mwp.teacher import solver_data
from acbench.results import write_metrics, write_text_atomic
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
    teacher: StageRef = Field(description="<replication>/<stage> of a mwp_teacher stage")
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


def prunable_fraction(curve: list[tuple[float, float]], drop_pts: float) -> float:
    base, best = curve[0][1], 0.0
    for fraction, accuracy in curve:
        if base - accuracy > drop_pts:
            break
        best = fraction
    return best


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    started = time.perf_counter()
    teacher, data, train, test = solver_data(stage_of(out_dir, config.teacher))
    size = config.score_batch_size
    batches = [collate(train[i * size:(i + 1) * size], teacher.vocab) for i in range(config.score_batches)
               if train[i * size:(i + 1) * size]]
    layers, heads = teacher.encoder.config.num_hidden_layers, teacher.encoder.config.num_attention_heads
    step = max(1, round(config.step_fraction * layers * heads))
    metrics: dict[str, float] = {}
    plans: dict[str, dict] = {}
    items = ItemLog()
    for score in config.scores:
        model = copy.deepcopy(teacher).eval()
        gates = HeadGates(model.encoder)

        def measure(fraction, pruned, name=score.name, model=model):
            outcomes = answer_outcomes(model, test, config.eval_batch, f"{name} {fraction:.0%} pruned")
            items.add_outcomes(f"{name}@{100 * fraction:.6g}", outcomes)  # exact share: the curve's x
            accuracy = outcomes.accuracy
            plans[f"{name}@{pct_tag(fraction)}"] = {str(k): v for k, v in as_plan(pruned).items()}
            return accuracy

        curve = iterative_pruning(layers, heads, step, config.steps,
                                  lambda pruned, s=score, m=model: head_scores(s.importance, m, batches, pruned),
                                  lambda pruned, g=gates: g.set_masked(as_plan(pruned)), measure,
                                  score.importance.min_heads_per_layer)
        for fraction, accuracy in curve:
            metrics[f"{score.name}.accuracy@{pct_tag(fraction)}"] = accuracy
        metrics[f"{score.name}.prunable_pct"] = 100 * prunable_fraction(curve, config.drop_pts)
        metrics[f"{score.name}.mean_accuracy"] = sum(a for _, a in curve) / len(curve)
    metrics["heads_total"] = layers * heads
    metrics["heads_per_step"] = step
    metrics["stage_seconds"] = time.perf_counter() - started
    write_text_atomic(out_dir / "table.md", table(config, metrics, layers * heads, step))
    write_metrics(out_dir, metrics, ["heads_total", "heads_per_step"],
                  {"pruned_heads": plans, "teacher": config.teacher, "data": data.model_dump(mode="json")},
                  items.write(out_dir))
    return metrics


def _fractions(metrics: dict[str, float], name: str) -> list[str]:
    tags = [k.split("@")[1] for k in metrics if k.startswith(f"{name}.accuracy@")]
    return sorted(tags, key=float)


def table(config: Config, metrics: dict[str, float], total: int, step: int) -> str:
    names = [s.name for s in config.scores]
    tags = _fractions(metrics, names[0])
    lines = [f"Iterative pruning without retraining, {step} of {total} heads per step; answer accuracy (%).", "",
             "| heads pruned | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for tag in tags:
        lines.append(f"| {tag}% | " + " | ".join(f"{metrics[f'{n}.accuracy@{tag}']:.1f}" for n in names) + " |")
    lines.append(f"| prunable (drop ≤ {config.drop_pts:g} pts) | "
                 + " | ".join(f"{metrics[f'{n}.prunable_pct']:.0f}%" for n in names) + " |")
    return "\n".join(lines) + "\n"


def plot(config: Config, metrics: dict[str, float], claims, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for score in config.scores:
        tags = _fractions(metrics, score.name)
        ax.plot([float(t) for t in tags], [metrics[f"{score.name}.accuracy@{t}"] for t in tags], "o-", label=score.name)
    base = metrics[f"{config.scores[0].name}.accuracy@0"]
    ax.axhline(base - config.drop_pts, color="grey", linestyle=":", label=f"unpruned − {config.drop_pts:g} pts")
    for claim in claims:
        if claim.result and claim.result.key.endswith("prunable_pct"):
            ax.axvline(claim.value, color="red", linestyle="--", label=f"published: {claim.value:g}% prunable (BERT)")
    ax.set(xlabel="heads pruned (%)", ylabel="answer accuracy (%)", title="Pruning without retraining")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "pruning_curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

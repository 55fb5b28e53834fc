"""The UHKD comparison across teacher → student pairs (reads metrics only, runs nothing).

Table: top-1 per pair × method and the target method's gain over the best baseline of each pair
(per-seed differences, mean ± std). Claim metrics: ``gain.<pair>`` (+ ``.std``, ``.n``) and, over the
heterogeneous pairs, ``gain.heterogeneous_min`` (the smaller gain: "beats on every heterogeneous pair"
holds when it is positive). Plots: accuracy per method per pair, and the training curves.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from acbench.config import Strict
from acbench.experiments.stage_io import sibling_stage
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage

TABLE = True
PLOTS = ("accuracy.png", "training_curves.png")


class Pair(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    stage: SiblingStage
    heterogeneous: bool


class Config(Strict):
    teacher_stage: SiblingStage
    pairs: list[Pair] = Field(min_length=1)
    target: str = "uhkd"


def _read(out_dir: Path, stage: str) -> dict:
    return read_metrics(sibling_stage(out_dir, stage) / METRICS_FILE)


def run(config: Config, out_dir: Path) -> dict[str, float]:
    teacher = _read(out_dir, config.teacher_stage)["metrics"]
    stages = {p.name: _read(out_dir, p.stage) for p in config.pairs}
    methods = list(dict.fromkeys(m for s in stages.values() for m in s["meta"]["methods"]))
    metrics: dict[str, float] = {"teacher.accuracy": teacher["accuracy"], "teacher.accuracy_before": teacher["accuracy_before"]}
    lines = [f"Teacher ResNet-56: {teacher['accuracy_before']:.2f}% on the JPEG test images before fine-tuning, "
             f"{teacher['accuracy']:.2f}% after. Students: top-1 (%), mean ± std over seeds.", "",
             "| method | " + " | ".join(p.label for p in config.pairs) + " |", "|---|" + "---|" * len(config.pairs)]
    for method in methods:
        cells = []
        for p in config.pairs:
            m = stages[p.name]["metrics"]
            if f"{method}.accuracy.mean" not in m:
                cells.append("–")
                continue
            n = int(m[f"{method}.seeds"])
            best = stages[p.name]["meta"].get("best_baseline") == method
            cell = f"{m[f'{method}.accuracy.mean']:.2f}" + (f" ± {m[f'{method}.accuracy.std']:.2f}" if n > 1 else "")
            cells.append(f"**{cell}**" if best else cell)
            metrics[f"{p.name}.{method}.accuracy.mean"] = m[f"{method}.accuracy.mean"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    gains = []
    lines.append(f"| {config.target} − best baseline (bold) | " + " | ".join(
        f"{stages[p.name]['metrics']['gain_over_best_baseline']:+.2f} ± {stages[p.name]['metrics']['gain_over_best_baseline.std']:.2f}"
        for p in config.pairs) + " |")
    for p in config.pairs:
        m = stages[p.name]["metrics"]
        for suffix in ("", ".std", ".n"):
            metrics[f"gain.{p.name}{suffix}"] = m[f"gain_over_best_baseline{suffix}"]
        if p.heterogeneous:
            gains.append((m["gain_over_best_baseline"], p.name))
    if gains:
        value, name = min(gains)
        metrics["gain.heterogeneous_min"] = value
        metrics["gain.heterogeneous_min.std"] = stages[name]["metrics"]["gain_over_best_baseline.std"]
        metrics["gain.heterogeneous_min.n"] = stages[name]["metrics"]["gain_over_best_baseline.n"]
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics, [], {})
    return metrics


def plot(config: Config, metrics: dict[str, float], claims, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stages = {p.name: _read(out_dir, p.stage) for p in config.pairs}
    methods = list(dict.fromkeys(m for s in stages.values() for m in s["meta"]["methods"]))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        xs = np.arange(len(config.pairs)) + i * width
        means = [stages[p.name]["metrics"].get(f"{method}.accuracy.mean", np.nan) for p in config.pairs]
        stds = [stages[p.name]["metrics"].get(f"{method}.accuracy.std", 0.0) for p in config.pairs]
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=method)
    ax.set_xticks(np.arange(len(config.pairs)) + 0.4 - width / 2, [p.label for p in config.pairs])
    ax.axhline(metrics["teacher.accuracy"], color="black", linestyle="--", linewidth=1, label="teacher")
    ax.set(ylabel="top-1 (%)", title="Accuracy per method and teacher → student pair (mean ± std over seeds)")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    accuracy = out_dir / "accuracy.png"
    fig.savefig(accuracy, dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(config.pairs), figsize=(4.5 * len(config.pairs), 3.6), squeeze=False)
    for ax, p in zip(axes[0], config.pairs):
        curves = stages[p.name]["meta"]["loss_curves"]
        for method in methods:
            runs = [np.asarray(v) for k, v in curves.items() if k.rsplit("-s", 1)[0] == method]
            if runs:
                length = min(len(r) for r in runs)
                ax.plot(np.mean([r[:length] for r in runs], axis=0), label=method)
        ax.set(title=p.label, xlabel="training progress (1/100 of the steps)", ylabel="training loss (mean over seeds)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    curves_path = out_dir / "training_curves.png"
    fig.savefig(curves_path, dpi=110)
    plt.close(fig)
    return [accuracy, curves_path]

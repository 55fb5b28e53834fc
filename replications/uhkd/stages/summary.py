"""The UHKD comparison across teacher → student pairs (reads metrics only, runs nothing).

Table: top-1 per pair × method (mean ± std over seeds; the comparator in bold) and, for each UHKD
reading, its gain over the comparator named before the run (OFA-KD), from per-seed differences on the
seeds both ran (same seed = same student initialisation and data order). Metrics:
``<pair>.<method>.accuracy.mean`` and ``gain.<target>.<pair>`` (+ ``.std``, ``.n``). The claims are
judged from the per-item records by the report (paired bootstrap), not from these means. Plots:
accuracy per method per pair, and the training curves.
"""
from __future__ import annotations

import statistics
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
    comparator: str = Field("ofa", description="the method every target is compared with, named before the run")
    targets: list[str] = Field(["uhkd"], min_length=1, description="the readings of the replicated method")


def _read(out_dir: Path, stage: str) -> dict:
    return read_metrics(sibling_stage(out_dir, stage) / METRICS_FILE)


def _seed_accuracies(metrics: dict, method: str) -> dict[str, float]:
    prefix = f"{method}.accuracy@s"
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}


def paired_gain(metrics: dict, target: str, comparator: str) -> tuple[float, float, int] | None:
    """(mean, std, n) of target − comparator over the seeds both ran; None without a common seed."""
    a, b = _seed_accuracies(metrics, target), _seed_accuracies(metrics, comparator)
    diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))]
    if not diffs:
        return None
    return statistics.fmean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else 0.0, len(diffs)


def run(config: Config, out_dir: Path) -> dict[str, float]:
    teacher = _read(out_dir, config.teacher_stage)["metrics"]
    stages = {p.name: _read(out_dir, p.stage) for p in config.pairs}
    methods = list(dict.fromkeys(m for s in stages.values() for m in s["meta"]["methods"]))
    missing = sorted({config.comparator, *config.targets} - set(methods))
    if missing:
        raise ValueError(f"summary: comparator/targets {missing} are not methods of the pair stages ({methods})")
    metrics: dict[str, float] = {"teacher.accuracy": teacher["accuracy"], "teacher.accuracy_before": teacher["accuracy_before"]}
    lines = [f"Teacher ResNet-56: {teacher['accuracy_before']:.2f}% on the JPEG test images before fine-tuning, "
             f"{teacher['accuracy']:.2f}% after. Students: top-1 (%), mean ± std over seeds (n = seeds); "
             f"the comparator ({config.comparator}) in bold.", "",
             "| method | " + " | ".join(p.label for p in config.pairs) + " |", "|---|" + "---|" * len(config.pairs)]
    for method in methods:
        cells = []
        for p in config.pairs:
            m = stages[p.name]["metrics"]
            if f"{method}.accuracy.mean" not in m:
                cells.append("–")
                continue
            n = int(m[f"{method}.seeds"])
            cell = f"{m[f'{method}.accuracy.mean']:.2f}" + (f" ± {m[f'{method}.accuracy.std']:.2f}" if n > 1 else "")
            cell += f" (n={n})"
            cells.append(f"**{cell}**" if method == config.comparator else cell)
            metrics[f"{p.name}.{method}.accuracy.mean"] = m[f"{method}.accuracy.mean"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for target in config.targets:
        cells = []
        for p in config.pairs:
            gain = paired_gain(stages[p.name]["metrics"], target, config.comparator)
            if gain is None:
                cells.append("–")
                continue
            mean, std, n = gain
            for suffix, value in (("", mean), (".std", std), (".n", n)):
                metrics[f"gain.{target}.{p.name}{suffix}"] = value
            cells.append(f"{mean:+.2f}" + (f" ± {std:.2f}" if n > 1 else "") + f" (n={n})")
        lines.append(f"| {target} − {config.comparator}, per seed | " + " | ".join(cells) + " |")
    lines += ["", "The verdicts (REPORT.md) come from paired bootstrap intervals over the test images and seeds; "
              "they judge *our reading* of UHKD (its paper's body, code and settings are not available)."]
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    exact = [k for k in metrics if k.endswith(".n")]
    write_metrics(out_dir, metrics, exact, {"comparator": config.comparator, "targets": config.targets})
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

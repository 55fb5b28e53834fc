"""Encoder pilot: teacher stages trained at (about) equal compute, compared on their validation problems.

Reads each candidate teacher stage's validation record (``items/valid.csv``, the best validation
check's weights), its test accuracy, training time and validation curve, and applies the rule the
README fixed before the pilots ran ("Math23k teacher pilot"): the candidate with the higher
validation accuracy is chosen; the choice is *resolved* when it leads the runner-up by at least
``resolve_points`` (the pre-registered approximation of the 95% half-width of a paired difference on
the validation problems). The paired 95% bootstrap interval of that difference is reported beside it.
The test split is reported and chooses nothing. Never re-runs anything.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from acbench.config import Strict
from acbench.experiments.stage_io import sibling_stage
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage
from acbench.stats import paired_bootstrap

from .pool import _records

TABLE = True
PLOTS = ("pilot_curves.png",)


class Candidate(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    stage: SiblingStage


class Config(Strict):
    candidates: list[Candidate] = Field(min_length=2)
    resolve_points: float = Field(6.0, gt=0, description="a lead of at least this many validation points "
                                  "resolves the choice (README, pre-registered)")

    @model_validator(mode="after")
    def _distinct(self) -> "Config":
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names repeat: {names}")
        return self


def _curve(out_dir: Path, stage: str) -> tuple[list[float], list[float]]:
    """(training minutes, validation accuracy) at each validation check of a teacher stage."""
    record = read_metrics(sibling_stage(out_dir, stage) / METRICS_FILE)
    steps = record["meta"]["valid_curve"]["steps"]
    per_step = record["metrics"]["train_seconds"] / record["metrics"]["steps"] / 60
    return [s * per_step for s in steps], list(record["meta"]["valid_curve"]["accuracy"])


def run(config: Config, out_dir: Path) -> dict[str, float]:
    valid = {c.name: _records(out_dir, c.stage, "valid") for c in config.candidates}
    ids = sorted(valid[config.candidates[0].name].ids)
    for name, outcomes in valid.items():
        if sorted(outcomes.ids) != ids:
            raise ValueError(f"candidate {name} was validated on other problems: a pilot compares the same ones")
    metrics: dict[str, float] = {"valid_problems": len(ids)}
    lines = ["Encoder pilot (validation chooses; the test split is only reported):", "",
             "| candidate | stage | validation (best check) | test | training (min) | steps |", "|---|---|---|---|---|---|"]
    for c in config.candidates:
        own = read_metrics(sibling_stage(out_dir, c.stage) / METRICS_FILE)["metrics"]
        metrics.update({f"valid_accuracy.{c.name}": valid[c.name].accuracy, f"test_accuracy.{c.name}": own["accuracy"],
                        f"train_minutes.{c.name}": own["train_seconds"] / 60, f"steps.{c.name}": own["steps"]})
        lines.append(f"| {c.name} | {c.stage} | {valid[c.name].accuracy:.1f} | {own['accuracy']:.1f} | "
                     f"{own['train_seconds'] / 60:.1f} | {own['steps']} |")
    ranked = sorted(config.candidates, key=lambda c: -valid[c.name].accuracy)  # stable: ties keep the listed order
    best, second = ranked[0].name, ranked[1].name
    by_id = {name: dict(zip(o.ids, o.correct)) for name, o in valid.items()}
    diff = paired_bootstrap({n: np.asarray([by_id[n][i] for i in ids], dtype=float) for n in (best, second)},
                            lambda acc: 100 * (acc[best] - acc[second]))
    resolved = diff.value >= config.resolve_points
    metrics.update({"lead": diff.value, "lead_low": diff.low, "lead_high": diff.high, "resolved": float(resolved),
                    "resolve_points": config.resolve_points})
    lines += ["", f"Chosen: **{best}**, {diff.value:+.1f} validation points ahead of {second} "
              f"[{diff.low:+.1f}, {diff.high:+.1f}] (95%, paired over {len(ids)} problems); "
              + ("resolved" if resolved else "not resolved, weakly supported")
              + f" (the pre-registered rule: a lead of at least {config.resolve_points:g} points)."]
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics, ["valid_problems", "resolve_points"],
                  {"chosen": best, "runner_up": second, "lead": diff.as_dict()})
    return metrics


def plot(config: Config, metrics: dict[str, float], claims, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for c in config.candidates:
        minutes, accuracy = _curve(out_dir, c.stage)
        ax.plot(minutes, accuracy, marker="o", label=f"{c.name} (test {metrics[f'test_accuracy.{c.name}']:.1f}%)")
    ax.set(xlabel="training time (min)", ylabel="validation answer accuracy (%)",
           title="Encoder pilot: validation accuracy against training time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "pilot_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

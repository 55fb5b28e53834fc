"""One comparison table of the attention-distillation replication (reads metrics only, runs nothing).

Rows: every distillation loss, columns: every student shape (``student_stages``); then the pruning
replication's 30% runs with each loss as the attention-alignment term (``alignment``: references to
variants of ``mwp_student`` stages, possibly of another replication); then the pruning curves'
prunable fractions.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from acbench.config import Strict
from acbench.experiments.stage_io import sibling_stage
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage, StageRef

TABLE = True

from .student import stage_of


class AlignmentRow(Strict):
    label: str
    stage: StageRef = Field(description="<replication>/<stage> of a mwp_student stage")
    variant: str


class Config(Strict):
    student_stages: dict[str, SiblingStage] = Field(min_length=1, description="column label -> student stage of this replication")
    curve_stage: SiblingStage
    alignment: list[AlignmentRow] = []


def _pm(metrics: dict, name: str) -> str:
    key = f"{name}.accuracy"
    if f"{key}.mean" not in metrics:
        return "–"
    n = int(metrics.get(f"{name}.seeds", 1))
    return f"{metrics[key + '.mean']:.1f} ± {metrics[key + '.std']:.1f} (n={n})" if n > 1 else f"{metrics[key + '.mean']:.1f}"


def run(config: Config, out_dir: Path) -> dict[str, float]:
    stages = {label: read_metrics(sibling_stage(out_dir, stage) / METRICS_FILE) for label, stage in config.student_stages.items()}
    students = {label: data["metrics"] for label, data in stages.items()}
    variants = sorted(dict.fromkeys(k.rsplit("-s", 1)[0] for data in stages.values() for k in data["meta"]["runs"]),
                      key=lambda v: -next(iter(students.values())).get(f"{v}.accuracy.mean", float("-inf")))
    first = next(iter(students.values()))
    metrics: dict[str, float] = {"teacher.accuracy": first["teacher.accuracy"]}
    lines = [f"Teacher solvers: {first['teacher.accuracy']:.1f}% answer accuracy (mean over folds). "
             "Students distilled with each loss, then fine-tuned, on every fold; answer accuracy (%) on the pooled "
             "test problems, mean ± std over seeds; "
             "rows by the first column.", "",
             "| distillation loss | " + " | ".join(students) + " |", "|---|" + "---|" * len(students)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(_pm(m, v) for m in students.values()) + " |")
        for label, m in students.items():
            if f"{v}.accuracy.mean" in m:
                metrics[f"{label}.{v}.accuracy.mean"] = m[f"{v}.accuracy.mean"]
    if config.alignment:
        lines += ["", "Inside the pruning replication (30% of heads pruned dynamically, KD with each alignment term):",
                  "", "| alignment term | answer accuracy (%) |", "|---|---|"]
        for row in config.alignment:
            m = read_metrics(stage_of(out_dir, row.stage) / METRICS_FILE)["metrics"]
            lines.append(f"| {row.label} | {_pm(m, row.variant)} |")
            metrics[f"alignment.{row.variant}.accuracy.mean"] = m[f"{row.variant}.accuracy.mean"]
    curve = read_metrics(sibling_stage(out_dir, config.curve_stage) / METRICS_FILE)["metrics"]
    names = sorted(k.split(".")[0] for k in curve if k.endswith(".prunable_pct"))
    lines += ["", "Pruning the teachers without retraining (iterative, see the pruning-curve table): "
              + "; ".join(f"{n}: {curve[f'{n}.prunable_pct']:.0f}% of heads prunable (within 2 pts: "
                          f"significantly up to {curve[f'{n}.prunable_pct.low']:.0f}%, not significantly beyond "
                          f"up to {curve[f'{n}.prunable_pct.high']:.0f}%)" for n in names) + "."]
    for n in names:
        metrics[f"{n}.prunable_pct"] = curve[f"{n}.prunable_pct"]
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics, [], {})
    return metrics

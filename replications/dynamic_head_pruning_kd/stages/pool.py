"""The 30% rows of every ASDiv-A fold pooled into one set of per-item records (1,217 test problems).

Reads, for each fold, the teacher's test record, the prune-only record at ``ratio`` and the student
stage's records of each run in ``runs`` (every seed present on all folds), and writes them as one
record per condition: ``teacher``, ``prune``, ``<run>@s<seed>``, with item ids ``fold<k>/<id>`` (:func:`acbench.stats.folds.fold_item`)
(metrics: each condition's pooled and per-fold accuracy, ``<run>_drop_pts`` = teacher − run and
``<run>_recovery_pct`` = the share of the prune-only loss the run wins back)
(the folds' test sets are disjoint, so the pooled set is the whole data set once). The claims then
use the existing paired statistics (``acbench.stats``) on these records; the fold prefix makes the
bootstrap resample folds, then items within them (each fold has its own teacher, a source of
variation the items alone do not show), as the attention-distillation replication does. Never
re-runs anything.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from acbench.config import Strict
from acbench.experiments.stage_io import sibling_stage
from acbench.items import ItemLog, Outcomes, read_records, runs_of
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage
from acbench.stats.folds import fold_item

from .prune_only import ratio_tag

TABLE = True
ITEMS = True  # per-item records under items/ (acbench.items): the pooled conditions


def distinct_folds(folds) -> None:
    """A config names each fold once (``folds``: items with a ``fold`` number)."""
    ids = [f.fold for f in folds]
    if len(set(ids)) != len(ids):
        raise ValueError(f"folds listed twice: {ids}")


class Fold(Strict):
    fold: int = Field(ge=0)
    teacher_stage: SiblingStage
    prune_stage: SiblingStage
    student_stage: SiblingStage


class Config(Strict):
    ratio: float = Field(ge=0, le=1)
    runs: list[str] = Field(min_length=1, description="student runs (variants) to pool")
    folds: list[Fold] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_folds(self) -> "Config":
        distinct_folds(self.folds)
        return self


def _records(out_dir: Path, stage: str, run: str) -> Outcomes:
    folder = sibling_stage(out_dir, stage)
    index = read_metrics(folder / METRICS_FILE)["items"]
    rows = read_records(folder, index, run)
    return Outcomes(tuple(r["item"] for r in rows), tuple(r["correct"] == "1" for r in rows),
                    tuple(r["prediction"] for r in rows))


def _seeds(out_dir: Path, stage: str, run: str) -> set[int]:
    index = read_metrics(sibling_stage(out_dir, stage) / METRICS_FILE)["items"]
    return {s for s in runs_of(index, run) if s is not None}


def pool(parts: list[tuple[int, Outcomes]]) -> Outcomes:
    """One record of several folds' records, item ids prefixed ``fold<k>/``."""
    ids, correct, predictions = [], [], []
    for fold, outcomes in parts:
        ids += [fold_item(fold, i) for i in outcomes.ids]
        correct += outcomes.correct
        predictions += outcomes.predictions
    return Outcomes(tuple(ids), tuple(correct), tuple(predictions))


def run(config: Config, out_dir: Path) -> dict[str, float]:
    tag = ratio_tag(config.ratio)
    conditions: dict[str, list[tuple[int, Outcomes]]] = {"teacher": [], "prune": []}
    seeds = {run: set.intersection(*(_seeds(out_dir, f.student_stage, run) for f in config.folds)) for run in config.runs}
    for run, common in seeds.items():
        if not common:
            raise ValueError(f"run {run!r} has no seed present on every fold ({[f.student_stage for f in config.folds]})")
    for f in config.folds:
        conditions["teacher"].append((f.fold, _records(out_dir, f.teacher_stage, "test")))
        conditions["prune"].append((f.fold, _records(out_dir, f.prune_stage, f"prune@{tag}")))
        for run in config.runs:
            for seed in sorted(seeds[run]):
                conditions.setdefault(f"{run}@s{seed}", []).append((f.fold, _records(out_dir, f.student_stage, f"{run}@s{seed}")))
    items, metrics = ItemLog(), {}
    lines = [f"Pooled over folds {', '.join(str(f.fold) for f in config.folds)} at {config.ratio:.0%} of the heads "
             "(answer accuracy, %):", "", "| condition | pooled | " + " | ".join(f"fold {f.fold}" for f in config.folds)
             + " |", "|---|---|" + "---|" * len(config.folds)]
    for name, parts in conditions.items():
        pooled = pool(parts)
        items.add_outcomes(name, pooled)
        key = name.replace("@", ".accuracy@") if "@" in name else f"{name}.accuracy"
        metrics[key] = pooled.accuracy
        for fold, outcomes in parts:
            metrics[f"{key}.fold{fold}"] = outcomes.accuracy
        lines.append(f"| {name} | {pooled.accuracy:.1f} | " + " | ".join(f"{o.accuracy:.1f}" for _, o in parts) + " |")
    lost = metrics["teacher.accuracy"] - metrics["prune.accuracy"]
    undefined: dict[str, str] = {}
    metrics["prune_only_drop_pts"] = lost
    for run in config.runs:
        values = [metrics[f"{run}.accuracy@s{s}"] for s in sorted(seeds[run])]
        metrics[f"{run}.accuracy"] = sum(values) / len(values)
        metrics[f"{run}_drop_pts"] = metrics["teacher.accuracy"] - metrics[f"{run}.accuracy"]
        if lost > 0:
            metrics[f"{run}_recovery_pct"] = 100 * (metrics[f"{run}.accuracy"] - metrics["prune.accuracy"]) / lost
        else:  # a share of nothing: declared in meta with the reason (the claim is then not testable)
            undefined[f"{run}_recovery_pct"] = f"pruning alone cost nothing ({lost:+.2f} points)"
    metrics["test_problems"] = len(pool(conditions["teacher"]).ids)
    lines += ["", f"{int(metrics['test_problems'])} test problems; each run's row is one seed's record."]
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics, ["test_problems"], {"seeds": {r: sorted(s) for r, s in seeds.items()}, **undefined},
                  items.write(out_dir))
    return metrics

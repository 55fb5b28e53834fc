"""Teachers of several ASDiv-A folds pooled into one test record, with a 95% interval and their floor.

Reads each fold's teacher test record (``items/test.csv``) and writes them as one record
``teacher`` with ids ``fold<k>/<id>`` (the folds' test sets are disjoint: every problem once), the
pooled accuracy with a bootstrap interval that resamples folds, then items within them
(:func:`acbench.stats.paired_bootstrap` with ``groups``), each fold's accuracy, validation accuracy and
best epoch, and whether the pooled accuracy reaches ``floor`` (issue 13's teacher floor, 70%). With
``versus`` (another stage of this kind, on the same folds), the paired difference this − that with its
interval (the same problems, resampled together).
A teacher set that reaches it can replace the teachers downstream stages read; one that does not is
reported beside them. Never re-runs anything.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from acbench.config import Strict
from acbench.experiments.stage_io import sibling_stage
from acbench.items import ItemLog
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage
from acbench.stats import paired_bootstrap
from acbench.stats.folds import fold_labels

from .pool import _records, distinct_folds, pool

TABLE = True
ITEMS = True  # the pooled teacher record


class TeacherFold(Strict):
    fold: int = Field(ge=0)
    teacher_stage: SiblingStage


class Config(Strict):
    folds: list[TeacherFold] = Field(min_length=2)
    floor: float = Field(70.0, ge=0, le=100, description="pooled test accuracy the teachers must reach (%)")
    versus: SiblingStage | None = Field(None, description="a pooled-teacher stage to compare with, problem by problem")

    @model_validator(mode="after")
    def _distinct_folds(self) -> "Config":
        distinct_folds(self.folds)
        return self


def run(config: Config, out_dir: Path) -> dict[str, float]:
    parts, metrics = [], {}
    lines = ["Teachers pooled over folds (answer accuracy on each fold's test problems, %):", "",
             "| fold | teacher stage | test | test problems | validation | best epoch | epochs trained |",
             "|---|---|---|---|---|---|---|"]
    for f in config.folds:
        outcomes = _records(out_dir, f.teacher_stage, "test")
        parts.append((f.fold, outcomes))
        own = read_metrics(sibling_stage(out_dir, f.teacher_stage) / METRICS_FILE)["metrics"]
        metrics[f"accuracy.fold{f.fold}"] = outcomes.accuracy
        for key in ("valid_accuracy", "best_epoch", "epochs_trained"):
            if key in own:
                metrics[f"{key}.fold{f.fold}"] = own[key]
        lines.append(f"| {f.fold} | {f.teacher_stage} | {outcomes.accuracy:.1f} | {len(outcomes.ids)} | "
                     f"{own.get('valid_accuracy', float('nan')):.1f} | {own.get('best_epoch', float('nan')):.0f} | "
                     f"{own.get('epochs_trained', float('nan')):.0f} |")
    pooled = pool(parts)
    estimate = paired_bootstrap({"teacher": np.asarray(pooled.correct, dtype=float)},
                                lambda acc: 100 * acc["teacher"], groups=fold_labels(pooled.ids))
    metrics.update({"accuracy": pooled.accuracy, "accuracy_low": estimate.low, "accuracy_high": estimate.high,
                    "mean_of_folds": float(np.mean([o.accuracy for _, o in parts])),
                    "floor": config.floor, "floor_passed": float(pooled.accuracy >= config.floor),
                    "test_problems": len(pooled.ids)})
    verdict = "reaches" if pooled.accuracy >= config.floor else "is below"
    lines += ["", f"Pooled: {pooled.accuracy:.1f}% [{estimate.low:.1f}, {estimate.high:.1f}] (95%, folds then "
              f"problems resampled) on {len(pooled.ids)} problems; mean of folds {metrics['mean_of_folds']:.1f}%. "
              f"The pooled accuracy {verdict} the {config.floor:g}% floor."]
    meta = {"interval": estimate.as_dict()}
    if config.versus is not None:
        other = _records(out_dir, config.versus, "teacher")
        if sorted(other.ids) != sorted(pooled.ids):
            raise ValueError(f"{config.versus} pools other problems than this stage: compare teachers on the same folds")
        theirs = dict(zip(other.ids, other.correct))
        diff = paired_bootstrap({"this": np.asarray(pooled.correct, dtype=float),
                                 "that": np.asarray([theirs[i] for i in pooled.ids], dtype=float)},
                                lambda acc: 100 * (acc["this"] - acc["that"]), groups=fold_labels(pooled.ids))
        metrics.update({"difference_vs": diff.value, "difference_vs_low": diff.low, "difference_vs_high": diff.high})
        meta["versus"] = {"stage": config.versus, **diff.as_dict()}
        lines.append(f"Against `{config.versus}` on the same problems: {diff.value:+.1f} points "
                     f"[{diff.low:+.1f}, {diff.high:+.1f}] (95%, paired).")
    items = ItemLog()
    items.add_outcomes("teacher", pooled)
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics, ["test_problems", "floor"], meta, items.write(out_dir))
    return metrics

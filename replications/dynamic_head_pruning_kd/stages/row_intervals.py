"""Rows of one comparison with their 95% intervals, from per-item records other stages wrote.

Each condition (e.g. the 30% rows: teacher, prune only, + fine-tune, + KD, ratio-0 control) names a
stage of this replication and one of its per-item records. All conditions must cover the same test
items. For each condition the stage writes its accuracy with a 95% percentile bootstrap interval and
its paired difference from the ``reference`` condition (reference − condition, in points) with its
interval, the items resampled together (:func:`acbench.stats.paired_bootstrap`); where the ids carry a
fold prefix (``fold<k>/…``, as the pooled five-fold records do), folds are resampled first, then
items within them. Never re-runs anything: it reads records and writes a table.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from acbench.config import Strict
from acbench.experiments.stage_io import sibling_stage
from acbench.items import read_records
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage
from acbench.stats import paired_bootstrap
from acbench.stats.folds import fold_labels

TABLE = True


class Condition(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$", description="the row's name in the table and the metric keys")
    stage: SiblingStage
    record: str = Field(min_length=1, description="the per-item record of that stage (e.g. test, prune@r30, kd@s0)")


class Config(Strict):
    conditions: list[Condition] = Field(min_length=2)
    reference: str = Field(description="the condition every difference is taken from (reference − condition)")

    @model_validator(mode="after")
    def _names(self) -> "Config":
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names repeat: {names}")
        if self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not one of the conditions {names}")
        return self


def read_correct(out_dir: Path, stage: str, record: str) -> dict[str, bool]:
    """``{item id: correct}`` of one record of a sibling stage (its SHA-256 checked)."""
    folder = sibling_stage(out_dir, stage)
    rows = read_records(folder, read_metrics(folder / METRICS_FILE).get("items", {}), record)
    return {r["item"]: r["correct"] == "1" for r in rows}


def run(config: Config, out_dir: Path) -> dict[str, float]:
    outcomes = {c.name: read_correct(out_dir, c.stage, c.record) for c in config.conditions}
    ids = sorted(outcomes[config.reference])
    for c in config.conditions:
        if sorted(outcomes[c.name]) != ids:
            raise ValueError(f"{c.stage}:{c.record} covers other items than the reference "
                             f"{config.reference!r} ({len(outcomes[c.name])} against {len(ids)})")
    vectors = {name: np.asarray([o[i] for i in ids], dtype=float) for name, o in outcomes.items()}
    groups = fold_labels(ids)
    ref = config.reference
    metrics: dict[str, float] = {"test_items": float(len(ids))}
    meta: dict[str, dict] = {}
    lines = [f"Answer accuracy (%) with 95% intervals, and {ref} − row in points (paired), on {len(ids)} test problems"
             + (f" of {len(set(groups))} folds (folds, then problems, resampled)" if groups else "") + ":", "",
             f"| row | stage: record | accuracy [95%] | {ref} − row [95%] |", "|---|---|---|---|"]
    for c in config.conditions:
        acc = paired_bootstrap({c.name: vectors[c.name]}, lambda a, n=c.name: 100 * a[n], groups=groups)
        metrics.update({f"{c.name}.accuracy": acc.value, f"{c.name}.accuracy_low": acc.low,
                        f"{c.name}.accuracy_high": acc.high})
        meta[c.name] = {"stage": c.stage, "record": c.record, "accuracy": acc.as_dict()}
        gap = ""
        if c.name != ref:
            diff = paired_bootstrap({"ref": vectors[ref], "row": vectors[c.name]},
                                    lambda a: 100 * (a["ref"] - a["row"]), groups=groups)
            metrics.update({f"{c.name}.gap_pts": diff.value, f"{c.name}.gap_pts_low": diff.low,
                            f"{c.name}.gap_pts_high": diff.high})
            meta[c.name]["gap"] = diff.as_dict()
            gap = f"{diff.value:+.1f} [{diff.low:+.1f}, {diff.high:+.1f}]"
        lines.append(f"| {c.name} | {c.stage}: {c.record} | {acc.value:.1f} [{acc.low:.1f}, {acc.high:.1f}] | {gap} |")
    write_text_atomic(out_dir / "table.md", "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics, ["test_items"], {"rows": meta})
    return metrics

"""One student shape on every ASDiv-A fold: the per-fold student stages joined on their 1,217 test items.

Reads the per-item records of every fold stage (``folds``: stages of this replication running
``stages/student.py``, one teacher fold each; item ids ``fold<k>/<id>``), writes each run
(``<variant>@s<seed>``) once with the items of all folds, and the paired comparisons (``gaps``:
``better`` − ``worse``) with 95% intervals from :func:`acbench.stats.paired_bootstrap` resampling
folds, items within folds and seeds. ``teacher.accuracy`` is the mean of the fold teachers' test
accuracies (the five-fold floor of issue 13); ``teacher.accuracy.pooled`` their accuracy on the
pooled items. Runs nothing: the claims of ``published.yaml`` read these records.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from pydantic import Field

from acbench.config import Strict
from acbench.experiments.stage_io import seed_summary, sibling_stage
from acbench.items import ItemLog, Outcomes, read_records
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage
from acbench.stats import paired_bootstrap
from acbench.stats.folds import fold_labels

from .student import Gap

TABLE = True
ITEMS = True  # per-item records under items/ (acbench.items)


class Config(Strict):
    folds: list[SiblingStage] = Field(min_length=1, description="the per-fold student stages (one teacher fold each)")
    gaps: list[Gap] = []


def _outcomes(rows: list[dict[str, str]]) -> Outcomes:
    return Outcomes(tuple(r["item"] for r in rows), tuple(r["correct"] == "1" for r in rows),
                    tuple(r["prediction"] for r in rows))


def join(parts: list[Outcomes]) -> Outcomes:
    ids = tuple(i for p in parts for i in p.ids)
    if len(set(ids)) != len(ids):
        raise ValueError("the folds' test items overlap (a fold stage listed twice?)")
    return Outcomes(ids, tuple(c for p in parts for c in p.correct), tuple(x for p in parts for x in p.predictions))


def run(config: Config, out_dir: Path) -> dict[str, float]:
    stages = {}
    for stage in config.folds:
        folder = sibling_stage(out_dir, stage)
        stages[stage] = (folder, read_metrics(folder / METRICS_FILE))
    names = [set(data["items"]) for _, data in stages.values()]
    common = sorted(set.intersection(*names))
    if any(n != set(common) for n in names):
        raise ValueError(f"the fold stages {list(stages)} do not hold the same runs: "
                         f"{sorted(set.union(*names) - set(common))} missing somewhere")
    items = ItemLog()
    joined = {}
    for run_name in common:
        joined[run_name] = join([_outcomes(read_records(folder, data["items"], run_name))
                                 for folder, data in stages.values()])
        items.add_outcomes(run_name, joined[run_name])
    first = next(iter(stages.values()))[1]["metrics"]
    teachers = [data["metrics"]["teacher.accuracy"] for _, data in stages.values()]
    sizes = [int(data["items"][common[0]]["rows"]) for _, data in stages.values()]  # test problems per fold
    metrics: dict[str, float] = {"teacher.accuracy": statistics.fmean(teachers),
                                 "teacher.accuracy.pooled": float(np.average(teachers, weights=sizes)),
                                 "teacher.accuracy.min_fold": min(teachers),
                                 "folds": len(stages), "items": sum(sizes),
                                 "student.encoder_params": first["student.encoder_params"],
                                 "teacher.encoder_params": first["teacher.encoder_params"],
                                 "runs.plateau_pct": statistics.fmean(d["metrics"]["runs.plateau_pct"]
                                                                      for _, d in stages.values())}
    variants = list(dict.fromkeys(r.split("@s")[0] for r in common))
    for v in variants:
        seeds = sorted(int(r.split("@s")[1]) for r in common if r.split("@s")[0] == v)
        accs = [joined[f"{v}@s{s}"].accuracy for s in seeds]
        for s, a in zip(seeds, accs):
            metrics[f"{v}.accuracy@s{s}"] = a
        metrics.update(seed_summary(v, accs))
    for gap in config.gaps:
        runs = {side: sorted(r for r in common if r.split("@s")[0] == name)
                for side, name in (("a", gap.better), ("b", gap.worse))}
        if not runs["a"] or [r.split("@s")[1] for r in runs["a"]] != [r.split("@s")[1] for r in runs["b"]]:
            raise ValueError(f"gap {gap.name!r}: {gap.better} and {gap.worse} are not run on the same seeds")
        mats = {side: np.array([joined[r].correct for r in rs], dtype=np.float64) for side, rs in runs.items()}
        est = paired_bootstrap(mats, lambda acc: 100 * (acc["a"] - acc["b"]),
                               groups=fold_labels(joined[runs["a"][0]].ids))
        metrics.update({f"gap.{gap.name}": est.value, f"gap.{gap.name}.low": est.low,
                        f"gap.{gap.name}.high": est.high, f"gap.{gap.name}.n": len(runs["a"])})
    write_text_atomic(out_dir / "table.md", table(config, metrics, variants))
    exact = [k for k in metrics if k.endswith((".seeds", "encoder_params", ".n")) or k in ("folds", "items")]
    meta = {"folds": {stage: data["meta"].get("fold") for stage, (_, data) in stages.items()},
            "runs": {f"{name}": {stage: data["meta"]["runs"].get(name) for stage, (_, data) in stages.items()}
                     for name in dict.fromkeys(k for _, data in stages.values() for k in data["meta"]["runs"])}}
    write_metrics(out_dir, metrics, exact, meta, items.write(out_dir))
    return metrics


def table(config: Config, metrics: dict[str, float], variants: list[str]) -> str:
    lines = [f"{int(metrics['folds'])} folds, {int(metrics['items'])} test problems; teachers "
             f"{metrics['teacher.accuracy']:.1f}% (mean over folds, lowest {metrics['teacher.accuracy.min_fold']:.1f}%); "
             f"{metrics['runs.plateau_pct']:.0f}% of the training phases stopped at their validation plateau.", "",
             "| distillation loss | answer accuracy (%) | seeds |", "|---|---|---|"]
    for v in variants:
        n = int(metrics[f"{v}.seeds"])
        lines.append(f"| {v} | {metrics[f'{v}.accuracy.mean']:.1f}"
                     + (f" ± {metrics[f'{v}.accuracy.std']:.1f}" if n > 1 else "") + f" | {n} |")
    if config.gaps:
        lines += ["", "| comparison | accuracy difference (pts) [95% CI: folds, items, seeds] |", "|---|---|"]
        for gap in config.gaps:
            g = f"gap.{gap.name}"
            lines.append(f"| {gap.better} − {gap.worse} | {metrics[g]:+.1f} [{metrics[g + '.low']:+.1f}, "
                         f"{metrics[g + '.high']:+.1f}] |")
    return "\n".join(lines) + "\n"

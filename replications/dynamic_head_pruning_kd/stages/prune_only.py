"""Prune the trained solver without any retraining, at every ratio: the "prune only" curve.

Importance is estimated once on training batches (the teacher's own weights and attention), the
lowest-scoring heads are removed for real, and the pruned solver is evaluated and metered.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path

from pydantic import Field

from acbench.config import Strict
from acbench.experiments.mwp.teacher import solver_data
from acbench.experiments.stage_io import sibling_stage
from acbench.items import ItemLog
from acbench.results import write_metrics
from acbench.stage_refs import SiblingStage
from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import collate
from acbench.solver.importance import ImportanceSettings, random_order, static_scores
from acbench.solver.io import set_threads
from acbench.solver.metering import LatencySettings, meter, reduction_pct
from methods.attention_heads import num_heads_per_layer
from methods.head_importance import lowest_heads
from methods.head_removal import remove_heads

ITEMS = True  # per-item records under items/ (acbench.items)


class Config(Strict):
    teacher_stage: SiblingStage
    ratios: list[float] = Field(min_length=1)
    importance: ImportanceSettings = ImportanceSettings()
    score_batches: int = Field(8, ge=1, description="training batches the importance is averaged over")
    score_batch_size: int = Field(16, ge=1)
    eval_batch: int = Field(64, ge=1)
    latency: LatencySettings = LatencySettings()
    seed: int = 0
    threads: int | None = Field(None, ge=1)


def ratio_tag(ratio: float) -> str:
    return f"{ratio:.2f}"


def choose_heads(scores, order, count: int, min_per_layer: int) -> dict[int, list[int]]:
    pairs = order[:count] if scores is None else lowest_heads(scores, count, min_per_layer=min_per_layer)
    plan: dict[int, list[int]] = {}
    for layer, head in pairs:
        plan.setdefault(layer, []).append(head)
    return plan


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    started = time.perf_counter()
    teacher, data, train, test = solver_data(sibling_stage(out_dir, config.teacher_stage))
    size = config.score_batch_size
    batches = [collate(train[i * size:(i + 1) * size], teacher.vocab) for i in range(config.score_batches)
               if train[i * size:(i + 1) * size]]
    scores = static_scores(config.importance, teacher, batches)
    heads = num_heads_per_layer(teacher.encoder)
    order = random_order(len(heads), max(heads), config.seed)
    models, plans, metrics, items = {}, {}, {}, ItemLog()
    for ratio in config.ratios:
        model = copy.deepcopy(teacher)
        plan = choose_heads(scores, order, round(ratio * sum(heads)), config.importance.min_heads_per_layer)
        remove_heads(model.encoder, plan)
        models[ratio_tag(ratio)], plans[ratio_tag(ratio)] = model.eval(), plan
        outcomes = answer_outcomes(model, test, config.eval_batch, f"prune {ratio:.0%}")
        items.add_outcomes(f"prune@{ratio_tag(ratio)}", outcomes)
        metrics[f"accuracy@{ratio_tag(ratio)}"] = outcomes.accuracy
        metrics[f"heads_removed@{ratio_tag(ratio)}"] = sum(len(h) for h in plan.values())
    base = ratio_tag(0.0) if 0.0 in config.ratios else None
    metered = meter(models, base or next(iter(models)), test, config.latency)
    for tag, values in metered.items():
        for key, value in values.items():
            metrics[f"{key}@{tag}"] = value
        if base:
            for key in ("params.whole_model", "params.encoder", "flops.encoder"):
                metrics[f"{key}_reduction_pct@{tag}"] = reduction_pct(metered[base][key], values[key])
    metrics["stage_seconds"] = time.perf_counter() - started
    exact = [k for k in metrics if k.startswith(("heads_removed@", "params.", "flops."))]
    write_metrics(out_dir, metrics, exact, {"removed_heads": plans, "data": data.model_dump(mode="json")},
                  items.write(out_dir))
    return metrics

"""Per-input head gating at inference (``methods.head_gating``) beside the unpruned and the statically pruned teacher.

The reading and every choice are pre-registered in the README ("Per-input gating at inference").
Three readings of one teacher, no retraining: ``unpruned``; ``static`` (the combined score on
training batches, the lowest ``ratio`` of heads removed for real, as the prune-only stage);
``gated`` (each input skips, layer by layer, its own lowest-scoring heads; as many per layer as the
budget says). Accuracy per test item for each; encoder latency at each batch size with the gated
model executed two ways (``mask``: all heads computed, skipped ones zeroed; ``gather``: only the
kept heads computed), all candidates interleaved round by round.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from acbench.config import Strict
from acbench.experiments.mwp.teacher import solver_data
from acbench.experiments.stage_io import sibling_stage
from acbench.items import ItemLog
from acbench.metering import compare_latency, count_flops
from acbench.results import write_metrics, write_text_atomic
from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import collate
from acbench.solver.importance import ImportanceSettings, random_order, static_scores
from acbench.solver.io import set_threads
from acbench.solver.metering import encoder_inputs
from acbench.stage_refs import SiblingStage
from acbench.stats import paired_bootstrap, rounds_bootstrap
from methods.attention_heads import num_heads_per_layer
from methods.head_gating import GatingParams, PerInputHeadGating
from methods.head_importance import lowest_heads
from methods.head_removal import remove_heads
from methods.head_selection import heads_to_prune

TABLE = True
ITEMS = True  # per-item records under items/ (acbench.items)
READINGS = ("unpruned", "static", "gated")
ACCURACY_DIFFERENCES = (("gated", "static"), ("gated", "unpruned"), ("static", "unpruned"))  # named before the run


def speedup(base, candidate, axis=-1):
    """100·(median time of ``base`` / median time of ``candidate`` − 1), as the report's speed-up claims."""
    return 100 * (np.median(base, axis=axis) / np.median(candidate, axis=axis) - 1)


class Latency(Strict):
    """Encoder latency on real test problems padded/truncated to ``seq`` tokens. Every round times every
    candidate once (rotating order), so per-round timings pair across candidates."""

    batches: list[int] = Field([1, 32], min_length=1)
    seq: int = Field(64, ge=8)
    warmup: int = Field(2, ge=0)
    repeats: int = Field(10, ge=1, description="timed calls per candidate = interleaved rounds")
    threads: int | None = Field(2, ge=1)


class Config(Strict):
    teacher_stage: SiblingStage
    ratio: float = Field(0.3, ge=0, lt=1, description="share of all heads removed (static) / skipped per input (gated)")
    gating: GatingParams = GatingParams()
    budget: Literal["static", "even"] = Field("static", description="heads skipped per layer: as many as the static "
                                              "plan removes there, or round(ratio x heads) spread evenly")
    modes: list[Literal["mask", "gather"]] = Field(["mask", "gather"], min_length=1)
    importance: ImportanceSettings = ImportanceSettings()
    score_batches: int = Field(8, ge=1, description="training batches the static score is averaged over")
    score_batch_size: int = Field(16, ge=1)
    eval_batch: int = Field(64, ge=1)
    agreement_tol: float = Field(1e-4, gt=0, description="max |Δ| allowed between the mask and gather encoder outputs")
    latency: Latency = Latency()
    seed: int = 0
    threads: int | None = Field(None, ge=1)


def static_plan(config: Config, teacher, train) -> dict[int, list[int]]:
    size = config.score_batch_size
    batches = [collate(train[i * size:(i + 1) * size], teacher.vocab) for i in range(config.score_batches)
               if train[i * size:(i + 1) * size]]
    heads = num_heads_per_layer(teacher.encoder)
    count = round(config.ratio * sum(heads))
    scores = static_scores(config.importance, teacher, batches)
    if scores is None:
        pairs = random_order(len(heads), max(heads), config.seed)[:count]
    else:
        pairs = lowest_heads(scores, count, min_per_layer=config.importance.min_heads_per_layer)
    plan: dict[int, list[int]] = {layer: [] for layer in range(len(heads))}
    for layer, head in pairs:
        plan[layer].append(head)
    return {layer: sorted(hs) for layer, hs in plan.items()}


def skip_counts(config: Config, heads: list[int], plan: dict[int, list[int]]) -> dict[int, int]:
    if config.budget == "static":
        counts = {layer: len(hs) for layer, hs in plan.items()}
    else:
        even = heads_to_prune(heads, config.ratio, "even", config.seed)
        counts = {layer: len(even.get(layer, [])) for layer in range(len(heads))}
    full = [layer for layer, n in counts.items() if n >= heads[layer]]
    if full:
        raise ValueError(f"budget {config.budget!r} would skip every head of layer(s) {full}; gating keeps one")
    return counts


def attention_macs_saved(encoder, counts: dict[int, int], seq: int, gated: bool) -> int:
    """Multiply-adds one input of ``seq`` tokens no longer pays when ``counts[l]`` heads of layer l go:
    removed (Q, K, V, O and QKᵀ, P·V) or skipped after gating (V, O and P·V only)."""
    hidden, d = encoder.config.hidden_size, encoder.config.hidden_size // encoder.config.num_attention_heads
    per_head = (2 * seq * hidden * d + seq * seq * d) if gated else (4 * seq * hidden * d + 2 * seq * seq * d)
    return per_head * sum(counts.values())


def selection_diagnostics(history: dict[int, list[torch.Tensor]], plan: dict[int, list[int]], heads: list[int]) -> dict:
    """Per-input overlap of the skipped heads with the static plan, distinct patterns, skip frequency."""
    layers = sorted(layer for layer, runs in history.items() if runs)
    if not layers:
        return {"metrics": {}, "frequency": {}}
    per_layer = {layer: torch.cat(history[layer]) for layer in layers}
    inputs = per_layer[layers[0]].shape[0]
    static = {(layer, h) for layer, hs in plan.items() for h in hs}
    patterns, jaccard, same = set(), [], 0
    for i in range(inputs):
        chosen = frozenset((layer, int(h)) for layer in layers for h in per_layer[layer][i])
        patterns.add(chosen)
        jaccard.append(len(chosen & static) / max(1, len(chosen | static)))
        same += chosen == static
    frequency = {str(layer): np.bincount(per_layer[layer].flatten().numpy(),
                                         minlength=heads[layer]).tolist() for layer in layers}
    return {"metrics": {"gated.jaccard_with_static.mean": float(np.mean(jaccard)),
                        "gated.same_as_static_pct": 100.0 * same / inputs,
                        "gated.distinct_patterns": float(len(patterns)), "gated.inputs": float(inputs)},
            "frequency": frequency}


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    started = time.perf_counter()
    teacher, data, train, test = solver_data(sibling_stage(out_dir, config.teacher_stage))
    teacher.eval()
    heads = num_heads_per_layer(teacher.encoder)
    plan = static_plan(config, teacher, train)
    counts = skip_counts(config, heads, plan)
    static = copy.deepcopy(teacher)
    remove_heads(static.encoder, {layer: hs for layer, hs in plan.items() if hs})
    static.eval()
    metrics: dict[str, float] = {"heads_removed@static": float(sum(len(h) for h in plan.values())),
                                 "heads_skipped_per_input@gated": float(sum(counts.values()))}
    items = ItemLog()

    correct: dict[str, np.ndarray] = {}

    def evaluate(reading: str, model) -> None:
        outcomes = answer_outcomes(model, test, config.eval_batch, f"{reading} test")
        items.add_outcomes(f"test@{reading}", outcomes)
        metrics[f"accuracy@{reading}"] = outcomes.accuracy
        correct[reading] = np.array(outcomes.correct, dtype=np.float64)

    evaluate("unpruned", teacher)
    evaluate("static", static)
    with PerInputHeadGating(teacher.encoder, counts, config.gating, mode="gather", record=True) as gating:
        evaluate("gated", teacher)
    diagnostics = selection_diagnostics(gating.history, plan, heads)
    for a, b in ACCURACY_DIFFERENCES:  # paired over items, 95% percentile bootstrap
        est = paired_bootstrap({a: correct[a], b: correct[b]}, lambda acc, a=a, b=b: 100 * (acc[a] - acc[b]))
        for key, value in (("", est.value), (".low", est.low), (".high", est.high)):
            metrics[f"accuracy_diff{key}@{a}-{b}"] = value
    metrics.update(diagnostics["metrics"])

    # the two executions of the gate must give the same encoder outputs
    batch = collate(test[:config.eval_batch], teacher.vocab)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    outs = {}
    for mode in ("mask", "gather"):
        with torch.no_grad(), PerInputHeadGating(teacher.encoder, counts, config.gating, mode=mode):
            outs[mode] = teacher.encoder(**inputs).last_hidden_state
    real = inputs["attention_mask"].bool()
    gap = float((outs["mask"] - outs["gather"]).abs()[real].max())
    if gap > config.agreement_tol:
        raise RuntimeError(f"gated encoder outputs differ by {gap:.2e} between mask and gather "
                           f"(tolerance {config.agreement_tol:.0e})")
    metrics["gated.mask_gather_max_abs_diff"] = gap

    # encoder FLOPs at batch 1 x seq (fvcore for unpruned and static; gated = unpruned - its analytic saving)
    seq = config.latency.seq
    flops_in = encoder_inputs(test, 1, seq)
    flops = {"unpruned": count_flops(teacher.encoder, flops_in)["total"],
             "static": count_flops(static.encoder, flops_in)["total"]}
    flops["gated"] = flops["unpruned"] - attention_macs_saved(teacher.encoder, counts, seq, gated=True)
    metrics["flops_check.static_analytic_minus_fvcore"] = float(
        attention_macs_saved(teacher.encoder, {layer: len(hs) for layer, hs in plan.items()}, seq, gated=False)
        - (flops["unpruned"] - flops["static"]))
    for reading in READINGS:
        metrics[f"flops.encoder@{reading}"] = float(flops[reading])
        metrics[f"flops.encoder_reduction_pct@{reading}"] = 100.0 * (1 - flops[reading] / flops["unpruned"])

    models = {"unpruned": teacher.encoder, "static": static.encoder}
    gates = []
    for mode in config.modes:
        encoder = copy.deepcopy(teacher.encoder)
        gates.append(PerInputHeadGating(encoder, counts, config.gating, mode=mode))
        models[f"gated_{mode}"] = encoder
    lat = config.latency
    try:
        for size in lat.batches:
            inputs = encoder_inputs(test, size, seq)
            calls = {name: (lambda m=m: m(**inputs)) for name, m in models.items()}
            result = compare_latency(calls, baseline="unpruned", warmup=lat.warmup, repeats=lat.repeats,
                                     threads=lat.threads, rounds=lat.repeats)
            samples = {name: np.array(result.stats[name].samples) for name in models}
            for name in models:
                items.add_timings(f"latency.b{size}@{name}", samples[name].tolist())
                metrics[f"latency_ms.b{size}@{name}"] = 1000 * result.stats[name].median
                for base, key in (("unpruned", "speedup_pct"), ("static", "speedup_vs_static_pct")):
                    if name == base or (base == "static" and not name.startswith("gated_")):
                        continue
                    # rounds are paired (every candidate timed once per round): bootstrap over rounds
                    est = rounds_bootstrap({base: samples[base], name: samples[name]}, speedup) if lat.repeats > 1 else None
                    metrics[f"{key}.b{size}@{name}"] = float(speedup(samples[base], samples[name]))
                    if est is not None:
                        metrics[f"{key}.low.b{size}@{name}"], metrics[f"{key}.high.b{size}@{name}"] = est.low, est.high
    finally:
        for gate in gates:
            gate.remove()
    metrics["stage_seconds"] = time.perf_counter() - started
    exact = [k for k in metrics if k.startswith(("heads_", "flops"))]
    meta = {"static_plan": {str(k): v for k, v in plan.items()}, "skip_per_layer": {str(k): v for k, v in counts.items()},
            "skip_frequency": diagnostics["frequency"], "gating": config.gating.model_dump(),
            "latency": lat.model_dump(), "data": data.model_dump(mode="json")}
    write_metrics(out_dir, metrics, exact, meta, items.write(out_dir))
    write_text_atomic(out_dir / "table.md", gating_table(config, metrics))
    return metrics


def gating_table(config: Config, metrics: dict[str, float]) -> str:
    """Markdown: one row per reading (and per execution of the gated one)."""
    sizes = config.latency.batches
    head = ["reading", "accuracy (%)", "heads dropped", "encoder GFLOPs", "Δ FLOPs"]
    head += [f"latency b{s} (ms)" for s in sizes] + [f"speed-up b{s}" for s in sizes]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = ["unpruned", "static"] + [f"gated_{m}" for m in config.modes]
    for name in names:
        reading = "gated" if name.startswith("gated") else name
        dropped = {"unpruned": "0", "static": f"{metrics['heads_removed@static']:.0f} removed",
                   "gated": f"{metrics['heads_skipped_per_input@gated']:.0f} per input"}[reading]
        cells = [name, f"{metrics[f'accuracy@{reading}']:.1f}", dropped,
                 f"{metrics[f'flops.encoder@{reading}'] / 1e9:.3f}",
                 f"−{metrics[f'flops.encoder_reduction_pct@{reading}']:.1f}%" if reading != "unpruned" else "—"]
        cells += [f"{metrics[f'latency_ms.b{s}@{name}']:.2f}" for s in sizes]
        cells += [_with_ci(metrics, "speedup_pct", s, name) if name != "unpruned" else "—" for s in sizes]
        rows.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        "Accuracy differences (points, paired over the same test items, 95% bootstrap interval): " + "; ".join(
            f"{a} − {b} {metrics[f'accuracy_diff@{a}-{b}']:+.1f} [{metrics[f'accuracy_diff.low@{a}-{b}']:+.1f}, "
            f"{metrics[f'accuracy_diff.high@{a}-{b}']:+.1f}]" for a, b in ACCURACY_DIFFERENCES) + ".",
        "Gated against static (speed-up, paired rounds): " + "; ".join(
            f"{name} b{s} {_with_ci(metrics, 'speedup_vs_static_pct', s, name)}"
            for name in names if name.startswith("gated_") for s in sizes) + ".",
        f"Ratio {config.ratio:.0%}; static = the lowest-scoring heads removed for real; gated = each input skips "
        f"its own lowest-scoring heads layer by layer ({config.budget} budget per layer), the Q·K part of every "
        "head always paid. gated_mask computes all heads and zeroes the skipped ones; gated_gather computes only "
        "the kept heads (sliced weights at batch 1, per-input gathered weights at larger batches). Both give the "
        "same outputs, so one accuracy.",
        f"FLOPs: encoder at batch 1 × {config.latency.seq} tokens (fvcore for unpruned and static; gated = unpruned "
        "minus the analytic saving of V, O and P·V of the skipped heads; the gate's entropy is not counted).",
        f"Latency: encoder forward, median of {config.latency.repeats} interleaved rounds after {config.latency.warmup} "
        f"warm-up calls, {config.latency.threads} threads; speed-up = t(unpruned)/t − 1 from the medians, "
        "[95% interval] from a paired bootstrap over the timing rounds.",
        f"Gated inputs whose skipped heads equal the static plan: {metrics.get('gated.same_as_static_pct', 0):.0f}%; "
        f"mean Jaccard overlap with it {metrics.get('gated.jaccard_with_static.mean', 0):.2f}; "
        f"{metrics.get('gated.distinct_patterns', 0):.0f} distinct skip patterns over "
        f"{metrics.get('gated.inputs', 0):.0f} test inputs.",
    ]
    return "\n".join(rows + notes) + "\n"


def _with_ci(metrics: dict[str, float], key: str, size: int, name: str) -> str:
    value = f"{metrics[f'{key}.b{size}@{name}']:+.1f}%"
    low, high = metrics.get(f"{key}.low.b{size}@{name}"), metrics.get(f"{key}.high.b{size}@{name}")
    return value if low is None else f"{value} [{low:+.1f}, {high:+.1f}]"

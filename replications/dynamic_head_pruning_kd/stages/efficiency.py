"""Architecture cost of attention-head pruning: parameters, FLOPs, latency and peak memory per ratio.

For each pruning ratio the chosen heads are *removed* from a copy of one randomly initialised
encoder (``methods.head_removal``), and the copies are measured side by side in this process:

- parameters of the whole model, the encoder layers and the attention blocks;
- FLOPs with fvcore at ``flops_shape`` (one multiply-add counts as one FLOP);
- latency at every ``latency_shapes`` entry, all ratios interleaved round by round
  (``acbench.metering.compare_latency``); speed-up = t(unpruned) / t(pruned) - 1;
- peak activation memory of one forward at ``memory_shape``.

Random weights are enough: none of these numbers depends on the weights' values. The removed
parameter count is also checked against the closed form (per head: 3 * (hidden * d + d) + d * hidden).
"""
from __future__ import annotations

import copy
import os
import platform
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from tqdm import tqdm

from acbench.config import Claim, Strict
from acbench.items import ItemLog
from acbench.metering import compare_latency, count_flops, count_parameters, measure_peak_memory
from acbench.models import EncoderGeometry, build_encoder, token_inputs
from acbench.results import write_metrics, write_text_atomic
from methods.head_removal import remove_heads
from methods.head_selection import heads_to_prune

TABLE = True
PLOTS = ("efficiency.png",)
ITEMS = True  # per-item records under items/ (acbench.items)


class Shape(Strict):
    batch: int = Field(ge=1)
    seq: int = Field(ge=1)

    @property
    def tag(self) -> str:
        return f"b{self.batch}_s{self.seq}"


class LatencySettings(Strict):
    warmup: int = Field(ge=0)
    repeats: int = Field(ge=1)
    threads: int = Field(ge=1)
    rounds: int = Field(ge=1, description="interleaved blocks per candidate (see compare_latency); "
                                          "equal to repeats, each round times every candidate once")

    @model_validator(mode="after")
    def _rounds_divide_repeats(self) -> "LatencySettings":
        if self.rounds != self.repeats:
            raise ValueError(f"rounds ({self.rounds}) must equal repeats ({self.repeats}): paired "
                             "speed-ups need one timed call per candidate per round")
        return self


class Config(Strict):
    model: EncoderGeometry
    ratios: list[float] = Field(min_length=1)
    selection: Literal["even", "random"] = "even"
    seed: int = 0
    flops_shape: Shape
    memory_shape: Shape
    latency_shapes: list[Shape] = Field(min_length=1)
    latency: LatencySettings
    device: Literal["cpu", "cuda"] = "cpu"

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        if any(not 0.0 <= r < 1.0 for r in v):
            raise ValueError(f"every ratio must be in [0, 1), got {v}")
        if 0.0 not in v:
            raise ValueError("ratios must include 0.0 (the unpruned reference)")
        if len(set(v)) != len(v):
            raise ValueError(f"ratios listed twice: {v}")
        return sorted(v)


def ratio_tag(ratio: float) -> str:
    return f"{ratio:.2f}"


def removed_params_closed_form(geometry: EncoderGeometry, heads_removed: int) -> int:
    d = geometry.hidden // geometry.num_heads
    return heads_removed * (3 * (geometry.hidden * d + d) + d * geometry.hidden)


def _pct(base: float, value: float) -> float:
    return 100.0 * (base - value) / base


def run(config: Config, out_dir: Path) -> dict[str, float]:
    started = time.perf_counter()
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but torch sees no GPU; use a cpu profile")
    geometry = config.model
    base = build_encoder(geometry, config.seed)
    models: dict[str, torch.nn.Module] = {}
    plans: dict[str, dict[int, list[int]]] = {}
    for ratio in tqdm(config.ratios, desc="removing heads", unit="ratio"):
        plan = heads_to_prune([geometry.num_heads] * geometry.num_layers, ratio,
                              config.selection, config.seed)
        model = copy.deepcopy(base)
        remove_heads(model, plan)
        models[ratio_tag(ratio)], plans[ratio_tag(ratio)] = model, plan

    metrics: dict[str, float] = {}
    deterministic: list[str] = []

    def put(key: str, value: float, exact: bool) -> None:
        metrics[key] = float(value)
        if exact:
            deterministic.append(key)

    param_groups = {tag: count_parameters(m) for tag, m in models.items()}
    counts = {tag: {"whole_model": g["counts"]["total"], "encoder": g["counts"]["encoder"],
                    "attention": g["counts"]["attention"]} for tag, g in param_groups.items()}
    flops_inputs = token_inputs(config.flops_shape.batch, config.flops_shape.seq,
                                geometry.vocab_size, config.seed)
    flops = {tag: count_flops(m, flops_inputs)["total"]
             for tag, m in tqdm(models.items(), desc="counting FLOPs", unit="model")}
    base_tag = ratio_tag(0.0)
    for tag, plan in plans.items():
        n_removed = sum(len(h) for h in plan.values())
        put(f"heads_removed@{tag}", n_removed, True)
        put(f"heads_removed_pct@{tag}", 100.0 * n_removed / (geometry.num_layers * geometry.num_heads), True)
        for group in ("whole_model", "encoder", "attention"):
            put(f"params.{group}@{tag}", counts[tag][group], True)
            put(f"params_reduction_pct.{group}@{tag}", _pct(counts[base_tag][group], counts[tag][group]), True)
        expected = removed_params_closed_form(geometry, n_removed)
        actual = counts[base_tag]["whole_model"] - counts[tag]["whole_model"]
        if expected != actual:
            raise RuntimeError(f"ratio {tag}: removed {actual} parameters, closed form says {expected}")
        put(f"flops@{tag}", flops[tag], True)
        put(f"flops_reduction_pct@{tag}", _pct(flops[base_tag], flops[tag]), True)

    for model in models.values():
        model.to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
        model(**inputs)
        sync()

    items = ItemLog()  # per-round times: paired speed-up intervals in the report
    for shape in tqdm(config.latency_shapes, desc="latency shapes", unit="shape"):
        inputs = {k: v.to(device) for k, v in
                  token_inputs(shape.batch, shape.seq, geometry.vocab_size, config.seed).items()}
        candidates = {tag: (lambda m=m: forward(m, inputs)) for tag, m in models.items()}
        result = compare_latency(candidates, baseline=base_tag, warmup=config.latency.warmup,
                                 repeats=config.latency.repeats, threads=config.latency.threads,
                                 rounds=config.latency.rounds)
        base_samples = result.stats[base_tag].samples
        for tag, stats in result.stats.items():
            items.add_timings(f"latency.{shape.tag}@{tag}", stats.samples)  # one timed call per round
            gain = result.speedups[tag].throughput_gain if tag != base_tag else 0.0
            # samples i of every candidate come from the same interleaved round: paired ratios
            paired = np.array([b / c - 1.0 for b, c in zip(base_samples, stats.samples)])
            put(f"latency_ms.{shape.tag}@{tag}", stats.median * 1e3, False)
            put(f"latency_iqr_ms.{shape.tag}@{tag}", stats.iqr * 1e3, False)
            put(f"speedup_pct.{shape.tag}@{tag}", 100.0 * gain, False)
            put(f"speedup_paired_iqr_pct.{shape.tag}@{tag}",
                100.0 * float(np.subtract(*np.percentile(paired, [75, 25]))), False)

    mem_inputs = {k: v.to(device) for k, v in token_inputs(
        config.memory_shape.batch, config.memory_shape.seq, geometry.vocab_size, config.seed).items()}
    for tag, model in models.items():
        put(f"peak_activation_mb@{tag}", measure_peak_memory(model, mem_inputs).peak_bytes / 2**20, False)

    meta = {
        "geometry": geometry.model_dump(),
        "flops_shape": config.flops_shape.model_dump(),
        "memory_shape": config.memory_shape.model_dump(),
        "latency_shapes": [s.model_dump() for s in config.latency_shapes],
        "latency": config.latency.model_dump(),
        "heads_removed": {tag: {str(k): v for k, v in plan.items()} for tag, plan in plans.items()},
        "parameter_groups": {g["name"]: g["description"] for g in param_groups[base_tag]["groups"]},
        "device": config.device,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_metrics(out_dir, metrics, deterministic, meta, items.write(out_dir))
    write_text_atomic(out_dir / "table.md", efficiency_table(config, metrics))
    return metrics


def plot(config: Config, metrics: dict[str, float], claims: list[Claim], out_dir: Path) -> list[Path]:
    """Reduction and speed-up vs ratio with the published points (drawn by the report stage, so a
    change to ``published.yaml`` never re-runs the measurement)."""
    from .efficiency_plot import plot_efficiency

    path = out_dir / "efficiency.png"
    plot_efficiency(config, metrics, claims, path)
    return [path]


def _reduction(pct: float) -> str:
    return f"−{pct:.2f}%" if pct else "—"


def efficiency_table(config: Config, metrics: dict[str, float]) -> str:
    """Markdown table: one row per ratio."""
    shapes = [s.tag for s in config.latency_shapes]
    head = ["ratio", "heads removed", "params (M)", "Δ params whole", "Δ params encoder",
            "Δ params attention", "GFLOPs", "Δ FLOPs", "peak activations (MB)"]
    head += [f"latency {s} (ms)" for s in shapes] + [f"speed-up {s}" for s in shapes]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for ratio in config.ratios:
        t = ratio_tag(ratio)
        cells = [f"{ratio:.0%}", f"{metrics[f'heads_removed@{t}']:.0f}",
                 f"{metrics[f'params.whole_model@{t}'] / 1e6:.2f}",
                 _reduction(metrics[f"params_reduction_pct.whole_model@{t}"]),
                 _reduction(metrics[f"params_reduction_pct.encoder@{t}"]),
                 _reduction(metrics[f"params_reduction_pct.attention@{t}"]),
                 f"{metrics[f'flops@{t}'] / 1e9:.3f}",
                 _reduction(metrics[f"flops_reduction_pct@{t}"]),
                 f"{metrics[f'peak_activation_mb@{t}']:.2f}"]
        cells += [f"{metrics[f'latency_ms.{s}@{t}']:.1f} ± {metrics[f'latency_iqr_ms.{s}@{t}'] / 2:.1f}"
                  for s in shapes]
        cells += [f"{metrics[f'speedup_pct.{s}@{t}']:+.1f}% "
                  f"(IQR {metrics[f'speedup_paired_iqr_pct.{s}@{t}']:.1f})" if ratio else "—" for s in shapes]
        rows.append("| " + " | ".join(cells) + " |")
    g, f = config.model, config.flops_shape
    notes = [
        "",
        f"Model: {g.family} geometry, {g.num_layers} layers × {g.num_heads} heads, hidden {g.hidden}, "
        f"FFN {g.intermediate}, vocab {g.vocab_size}, pooler {'yes' if g.pooler else 'no'}; random weights "
        f"(seed {config.seed}); heads chosen by the '{config.selection}' rule and removed for real.",
        f"FLOPs: fvcore at batch {f.batch} × sequence {f.seq} (one multiply-add = one FLOP). Peak "
        f"activations: one forward at batch {config.memory_shape.batch} × sequence {config.memory_shape.seq}, "
        "above the weights (torch profiler allocation events on CPU).",
        f"Latency: median ± half the inter-quartile range over {config.latency.repeats} repeats after "
        f"{config.latency.warmup} warm-up calls, {config.latency.threads} threads, all ratios interleaved "
        "in one process; speed-up = t(unpruned) / t(pruned) − 1 from the medians, with the inter-quartile "
        "range of the per-round paired speed-ups in brackets (the measurement spread).",
        "Δ params: whole = every parameter of the model (embeddings included); encoder = the transformer "
        "layers; attention = Q/K/V/O weights and biases of those layers.",
    ]
    return "\n".join(rows + notes) + "\n"

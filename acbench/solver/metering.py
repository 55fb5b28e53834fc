"""Size and speed of a (pruned) solver beside its teacher: parameters, encoder FLOPs, encoder latency.

Latency is the encoder forward pass (the part head pruning changes; the decoder is untouched) on
real test problems padded/truncated to ``seq`` tokens, pruned and unpruned timed interleaved in one
process (``acbench.metering.compare_latency``).
"""
from __future__ import annotations

import torch
from pydantic import Field

from acbench.config import Strict
from acbench.metering import compare_latency, count_flops, count_parameters
from acbench.solver.examples import Example


class LatencySettings(Strict):
    batches: list[int] = Field([1, 32], min_length=1)
    seq: int = Field(64, ge=8)
    warmup: int = Field(2, ge=0)
    repeats: int = Field(10, ge=1)
    rounds: int = Field(5, ge=1)
    threads: int | None = Field(2, ge=1)


def encoder_inputs(examples: list[Example], batch: int, seq: int) -> dict[str, torch.Tensor]:
    """``batch`` test problems (cycled if fewer) as a (batch, seq) id tensor with its mask."""
    ids = torch.zeros(batch, seq, dtype=torch.long)
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for i in range(batch):
        tokens = examples[i % len(examples)].input_ids[:seq]
        ids[i, :len(tokens)] = torch.tensor(tokens)
        mask[i, :len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def size_metrics(model) -> dict[str, float]:
    groups = count_parameters(model.encoder)["counts"]
    return {"params.whole_model": sum(p.numel() for p in model.parameters()),
            "params.encoder": groups["encoder"], "params.attention": groups["attention"]}


def meter(models: dict[str, torch.nn.Module], baseline: str, examples: list[Example],
          settings: LatencySettings) -> dict[str, dict[str, float]]:
    """Per model name: parameters, encoder FLOPs (batch 1 × seq) and encoder latency/speed-up per batch size."""
    out = {name: size_metrics(m) for name, m in models.items()}
    flops_in = encoder_inputs(examples, 1, settings.seq)
    for name, m in models.items():
        out[name]["flops.encoder"] = count_flops(m.encoder, flops_in)["total"]
    for batch in settings.batches:
        inputs = encoder_inputs(examples, batch, settings.seq)
        calls = {name: (lambda m=m: m.encoder(**inputs)) for name, m in models.items()}
        with torch.no_grad():
            comparison = compare_latency(calls, baseline=baseline, warmup=settings.warmup, repeats=settings.repeats,
                                         threads=settings.threads, rounds=min(settings.rounds, settings.repeats))
        for name in models:
            out[name][f"latency_ms.b{batch}"] = 1000 * comparison.stats[name].median
            if name != baseline:
                out[name][f"speedup_pct.b{batch}"] = 100 * comparison.speedups[name].throughput_gain
    return out


def reduction_pct(base: float, value: float) -> float:
    return 100.0 * (base - value) / base

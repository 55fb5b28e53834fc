"""The per-input gating stage's pure parts: its FLOPs accounting against fvcore, its budgets, its diagnostics."""
import copy

import methods  # noqa: F401  (torchvision shim before transformers)
import pytest
import torch
from transformers import BertConfig, BertModel

from acbench.metering import count_flops
from methods.head_removal import remove_heads
from replications.dynamic_head_pruning_kd.stages.gating import (Config, attention_macs_saved, selection_diagnostics,
                                                                 skip_counts)


def tiny_encoder() -> BertModel:
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=50)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return BertModel(config, add_pooling_layer=False).eval()


def test_analytic_saving_of_removal_matches_fvcore():
    model, seq = tiny_encoder(), 11
    plan = {0: [1, 3], 1: [0]}
    pruned = copy.deepcopy(model)
    remove_heads(pruned, plan)
    inputs = {"input_ids": torch.ones(1, seq, dtype=torch.long), "attention_mask": torch.ones(1, seq, dtype=torch.long)}
    measured = count_flops(model, inputs)["total"] - count_flops(pruned, inputs)["total"]
    counts = {layer: len(h) for layer, h in plan.items()}
    assert attention_macs_saved(model, counts, seq, gated=False) == measured
    # gating skips V, O and P·V only: exactly half of what removal saves per head
    assert 2 * attention_macs_saved(model, counts, seq, gated=True) == measured


def config(budget: str) -> Config:
    return Config(teacher_stage="asdiv_teacher", ratio=0.3, budget=budget)


def test_budgets():
    plan = {0: [], 1: [0, 1, 2], 2: [3]}
    assert skip_counts(config("static"), [4, 4, 4], plan) == {0: 0, 1: 3, 2: 1}
    assert sum(skip_counts(config("even"), [4, 4, 4], plan).values()) == round(0.3 * 12)
    with pytest.raises(ValueError, match="would skip every head of layer"):
        skip_counts(config("static"), [4, 3, 4], plan)
    with pytest.raises(ValueError):
        Config(teacher_stage="asdiv_teacher", budget="global")


def test_diagnostics_count_patterns_and_overlap():
    plan = {0: [1], 1: [2]}
    history = {0: [torch.tensor([[1], [0]]), torch.tensor([[1]])], 1: [torch.tensor([[2], [2]]), torch.tensor([[3]])]}
    out = selection_diagnostics(history, plan, [4, 4])
    m = out["metrics"]
    assert m["gated.inputs"] == 3 and m["gated.distinct_patterns"] == 3
    assert m["gated.same_as_static_pct"] == pytest.approx(100 / 3)
    assert m["gated.jaccard_with_static.mean"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    assert out["frequency"] == {"0": [1, 2, 0, 0], "1": [0, 0, 2, 1]}

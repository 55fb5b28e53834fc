"""Tests of acbench.metering: parameter groups, FLOPs (fvcore vs analytic), latency stats, peak memory."""
import acbench  # noqa: F401  (torchvision shim before transformers)

import math
import os

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForMaskedLM, BertModel, RobertaConfig, RobertaForSequenceClassification
from transformers.models.bert.modeling_bert import BertLayer

from acbench.metering import (
    LatencyStats,
    analytic_bert_layer_flops,
    compare_latency,
    count_flops,
    count_parameters,
    count_parameters_by_prefix,
    measure_latency,
    measure_peak_memory,
    peak_memory_of,
    weights_bytes,
)

B, S, H, HEADS, INTER = 2, 16, 96, 6, 384


def bert_config(layers=2, hidden=H, heads=HEADS, intermediate=INTER, **kw):
    return BertConfig(vocab_size=100, hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate,
                      num_hidden_layers=layers, max_position_embeddings=64, attn_implementation="eager", **kw)


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    return BertModel(bert_config()).eval()


def ids(batch=B, seq=S):
    return torch.randint(0, 100, (batch, seq), generator=torch.Generator().manual_seed(0))


# --- parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("layers,hidden,heads", [(2, 96, 6), (3, 64, 4), (1, 32, 2)])
def test_attention_count_closed_form(layers, hidden, heads):
    counts = count_parameters(BertModel(bert_config(layers, hidden, heads, 4 * hidden)))["counts"]
    assert counts["attention"] == layers * (4 * hidden * hidden + 4 * hidden)
    assert counts["ffn"] == layers * (2 * hidden * 4 * hidden + 4 * hidden + hidden)


@pytest.mark.parametrize("build", [
    lambda: BertModel(bert_config()),
    lambda: BertForMaskedLM(bert_config()),  # decoder weight tied to the word embeddings
    lambda: RobertaForSequenceClassification(RobertaConfig(vocab_size=100, hidden_size=64, num_attention_heads=4,
                                                           intermediate_size=128, num_hidden_layers=2,
                                                           max_position_embeddings=40)),
], ids=["bert", "bert-mlm-tied", "roberta-cls"])
def test_groups_partition_the_model(build):
    model = build()
    result = count_parameters(model)
    counts, hidden = result["counts"], model.config.hidden_size
    assert result["family"] == "bert"
    assert sum(counts[g] for g in result["partition"]) == counts["total"]
    assert counts["total"] == sum(p.numel() for p in model.parameters())  # unique parameters
    layer_norms = model.config.num_hidden_layers * 2 * 2 * hidden  # two affine layer norms per layer
    assert counts["encoder"] == counts["attention"] + counts["ffn"] + layer_norms
    assert all(g["description"] for g in result["groups"])
    assert [g["name"] for g in result["groups"]] == list(counts)


def test_generic_model_gets_total_only():
    result = count_parameters(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    assert result["family"] == "generic" and result["partition"] == []
    assert result["counts"] == {"total": 3 * 4 + 4 + 4 * 2 + 2}


def test_prefix_groups_respect_module_boundaries():
    model = nn.ModuleDict({"layer": nn.ModuleList(nn.Linear(2, 2) for _ in range(11)), "head": nn.Linear(2, 1)})
    result = count_parameters_by_prefix(model, {"one": "layer.1", "ten": ["layer.10"], "all_layers": "layer"})
    assert result["counts"] == {"one": 6, "ten": 6, "all_layers": 66}
    assert result["total"] == 69 and result["unassigned"] == 3


def test_pruned_heads_reduce_attention_count():
    model = BertModel(bert_config())
    model.prune_heads({0: [0, 1], 1: [3]})
    head_dim = H // HEADS
    removed = 3 * (4 * H * head_dim + 3 * head_dim)  # Q/K/V weight+bias rows, O weight columns
    assert count_parameters(model)["counts"]["attention"] == 2 * (4 * H * H + 4 * H) - removed


# --- FLOPs --------------------------------------------------------------------------------------

def test_fvcore_matches_analytic_bert_layer():
    layer = BertLayer(bert_config())
    hidden_states = torch.randn(B, S, H)
    measured = count_flops(layer, (hidden_states,))
    analytic = analytic_bert_layer_flops(S, H, HEADS, H // HEADS, INTER, batch=B, include_layer_norm=True)
    ops = measured["by_operator"]
    # matmul parts: exact, component by component
    projections = analytic["qkv_projections"] + analytic["output_projection"] + analytic["ffn"]
    assert ops["linear"] == projections == 3_538_944
    assert ops["matmul"] == analytic["attention_scores"] + analytic["attention_context"] == 98_304
    assert measured["matmul_total"] == analytic["matmul_total"] == 3_637_248
    # layer norms: both sides use fvcore's 5 flops per element; everything else is counted by neither
    assert ops["layer_norm"] == analytic["layer_norm"] == 30_720
    assert measured["total"] == analytic["total"] == 3_667_968
    assert {"softmax", "gelu"} <= set(measured["skipped_operators"])
    assert measured["input_shapes"] == {"arg0": [B, S, H]}
    assert layer.training  # eval mode was only temporary


def test_analytic_excludes_layer_norm_by_default():
    parts = analytic_bert_layer_flops(S, H, HEADS, H // HEADS, INTER, batch=B)
    assert parts["layer_norm"] == 0 and parts["total"] == parts["matmul_total"]
    assert analytic_bert_layer_flops(S, H, HEADS, H // HEADS, INTER, batch=2 * B)["total"] == 2 * parts["total"]


def bert_model_flops(config, batch, seq, heads_per_layer=None):
    """Analytic BertModel total: layers (with fvcore's layer-norm convention) + embedding LN + pooler."""
    head_dim = config.hidden_size // config.num_attention_heads
    heads_per_layer = heads_per_layer or [config.num_attention_heads] * config.num_hidden_layers
    layers = sum(analytic_bert_layer_flops(seq, config.hidden_size, n, head_dim, config.intermediate_size,
                                           batch=batch, include_layer_norm=True)["total"] for n in heads_per_layer)
    return layers + 5 * batch * seq * config.hidden_size + batch * config.hidden_size ** 2


def test_whole_bert_model_matches_analytic(bert):
    measured = count_flops(bert, {"input_ids": ids(), "attention_mask": torch.ones(B, S, dtype=torch.long)})
    assert measured["total"] == bert_model_flops(bert.config, B, S) == 7_369_728
    assert measured["input_shapes"] == {"input_ids": [B, S], "attention_mask": [B, S]}
    assert "embedding" in measured["skipped_operators"]


@pytest.mark.parametrize("heads", [2, 4, 8])
def test_flops_scale_with_heads_at_constant_head_dim(heads):
    head_dim = 16
    config = bert_config(layers=1, hidden=heads * head_dim, heads=heads, intermediate=4 * heads * head_dim)
    measured = count_flops(BertModel(config), (ids(),))
    assert measured["total"] == bert_model_flops(config, B, S)
    # the attention-score matmuls grow linearly with the number of heads
    assert measured["by_operator"]["matmul"] == heads * 2 * B * S * S * head_dim


def test_removed_heads_remove_their_flops():
    model = BertModel(bert_config()).eval()
    full = count_flops(model, (ids(),))
    model.prune_heads({0: [0, 1], 1: [3]})  # real removal: hidden and head_dim stay
    pruned = count_flops(model, (ids(),))
    head_dim = H // HEADS
    per_head = 4 * B * S * H * head_dim + 2 * B * S * S * head_dim
    assert full["total"] - pruned["total"] == 3 * per_head
    assert pruned["total"] == bert_model_flops(model.config, B, S, heads_per_layer=[4, 5])


# --- latency ------------------------------------------------------------------------------------

def test_stats_from_known_samples():
    stats = LatencyStats.from_samples([5.0, 1.0, 4.0, 2.0, 3.0], threads=1)
    assert (stats.median, stats.p25, stats.p75, stats.iqr, stats.min, stats.max) == (3.0, 2.0, 4.0, 2.0, 1.0, 5.0)
    assert stats.mean == 3.0 and math.isclose(stats.std, math.sqrt(2.5))
    assert stats.samples == (5.0, 1.0, 4.0, 2.0, 3.0) and "samples" not in stats.as_dict()


def test_measure_latency_stats_and_threads_restored():
    before = torch.get_num_threads()
    seen = []
    x = torch.randn(32, 32)

    def fn():
        seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled()))
        return x @ x

    stats = measure_latency(fn, warmup=2, repeats=9, threads=1)
    assert stats.n == 9 and len(seen) == 11 and set(seen) == {(1, True)}
    assert stats.min <= stats.p25 <= stats.median <= stats.p75 <= stats.max
    assert stats.threads == 1 and stats.iqr == stats.p75 - stats.p25 and stats.std >= 0
    assert torch.get_num_threads() == before


def test_threads_restored_when_fn_raises():
    before = torch.get_num_threads()

    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        measure_latency(boom, warmup=0, repeats=1, threads=1)
    assert torch.get_num_threads() == before


def test_compare_latency_interleaves_and_reports_ratios():
    calls = []
    candidates = {name: (lambda name=name: calls.append(name)) for name in ("base", "a", "b")}
    result = compare_latency(candidates, baseline="base", warmup=1, repeats=5, rounds=2, threads=1)
    timed = calls[3:]  # after one warm-up call each
    # round 0: blocks of 3 in order base, a, b; round 1: blocks of 2, rotated to start at a
    assert timed == ["base"] * 3 + ["a"] * 3 + ["b"] * 3 + ["a"] * 2 + ["b"] * 2 + ["base"] * 2
    assert set(result.speedups) == {"a", "b"} and result.baseline == "base"
    assert all(s.n == 5 for s in result.stats.values())
    for name, sp in result.speedups.items():
        ratio = result.stats["base"].median / result.stats[name].median
        assert math.isclose(sp.ratio, ratio)
        assert math.isclose(sp.throughput_gain, ratio - 1)
        assert math.isclose(sp.latency_reduction, 1 - 1 / ratio)
    assert set(result.as_dict()["speedups"]) == {"a", "b"}


def test_compare_latency_on_models(bert):
    short, long = ids(seq=8), ids(seq=32)
    result = compare_latency({"seq32": lambda: bert(long), "seq8": lambda: bert(short)},
                             warmup=1, repeats=4, rounds=2, threads=1)
    assert result.baseline == "seq32" and set(result.speedups) == {"seq8"}
    assert result.stats["seq8"].p25 <= result.stats["seq8"].median <= result.stats["seq8"].p75


# --- memory -------------------------------------------------------------------------------------

def test_running_sum_peak_is_exact():
    def fn():
        a = torch.empty(1000)           # 4000 bytes, kept
        b = torch.empty(2000)           # 8000 bytes, freed below
        del b
        torch.empty(500)                # 2000 bytes, freed at once
        return a

    peak, out = peak_memory_of(fn)
    assert peak == 12_000 and out.shape == (1000,)


def test_peak_grows_with_input_and_covers_output(bert):
    small = measure_peak_memory(bert, {"input_ids": ids(seq=8)})
    large = measure_peak_memory(bert, {"input_ids": ids(seq=48)})
    assert large.peak_bytes >= small.peak_bytes > 0
    for stats, seq in ((small, 8), (large, 48)):
        assert stats.output_bytes == B * seq * H * 4 + B * H * 4  # last_hidden_state + pooler_output
        assert stats.peak_bytes >= stats.output_bytes
        assert stats.input_shapes == {"input_ids": [B, seq]} and stats.device == "cpu"
    params = sum(p.numel() for p in bert.parameters()) * 4
    buffers = sum(b.nbytes for b in bert.buffers())
    assert small.weights_bytes == weights_bytes(bert) == params + buffers


def test_memory_measurement_keeps_other_stderr(capfd):
    peak, _ = peak_memory_of(lambda: os.write(2, b"keep this line\n"))
    err = capfd.readouterr().err
    assert "keep this line" in err and "profiler_start" not in err and peak == 0

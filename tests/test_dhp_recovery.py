"""Recovery of the pruned solver (issue 13, items 1, 5, 6, 7): cached teacher outputs give the per-step
teacher's loss, the loss shares, the two training-time readings of "dynamic" pruning, the ratio-0
control, and plateau selection that never keeps weights from before the mask is complete."""
from __future__ import annotations

import copy
from fractions import Fraction

import pytest
import torch

from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import Example, OutputVocab, collate
from acbench.solver.importance import ImportanceSettings, random_order, static_scores
from acbench.solver.losses import distill_loss
from acbench.solver.model import MWPSolver
from acbench.solver.teacher_cache import TeacherCache, cache_bytes
from acbench.training import DistContext
from methods.attention_alignment import alignment_loss, qkv_layers
from methods.attention_capture import capture_qkv
from replications.dynamic_head_pruning_kd.stages.loss_shares import loss_shares
from replications.dynamic_head_pruning_kd.stages.prune_only import choose_heads
from replications.dynamic_head_pruning_kd.stages.student import (INELIGIBLE, Config, KDSettings, Variant,
                                                                  _cache_keys, cacheable, make_pruner, run_one,
                                                                  teacher_cache)

VOCAB, LAYERS, HEADS = 30, 2, 4
OUT = OutputVocab(("1",), 3)


def _solver(seed: int = 0) -> MWPSolver:
    torch.manual_seed(seed)
    spec = EncoderSpec(kind="scratch", num_layers=LAYERS, num_heads=HEADS, hidden=16, intermediate=32, dropout=0.1)
    return MWPSolver(build_encoder(spec, VOCAB), OUT, 1, 2, 6, 0.1)


def _examples(n: int, prefix: str = "e") -> list[Example]:
    """Problems "a op b" of different lengths (so batches are padded), prefix targets over slots N0, N1."""
    g = torch.Generator().manual_seed(len(prefix) + n)
    out = []
    for i in range(n):
        length = 5 + i % 6
        a, b = 2 + i % 5, 1 + i % 3
        op, value = [("+", a + b), ("-", a - b), ("*", a * b)][i % 3]
        out.append(Example(f"{prefix}{i}", torch.randint(1, VOCAB, (length,), generator=g).tolist(), [1, 3],
                           [Fraction(a), Fraction(b)], [OUT.index(op), OUT.index("N0"), OUT.index("N1")], str(value)))
    return out


ALIGN = [("attention_mse", {"form": "probabilities"}), ("minilm", {}), ("minilmv2", {})]


def test_score_form_mse_keeps_the_per_step_teacher():
    """TinyBERT's score form counts padded query rows (batch-dependent): never cached."""
    scores = Variant(name="kd", mode="kd", kd=KDSettings(align_loss="attention_mse"))
    probs = Variant(name="kd", mode="kd", kd=KDSettings(align_params={"form": "probabilities"}))
    off = Variant(name="kd", mode="kd", kd=KDSettings(align_weight=0.0))
    assert not cacheable(scores) and cacheable(probs) and cacheable(off)
    assert teacher_cache(_config(), scores, _solver(0), _examples(4), [0, 1]) is None
    assert teacher_cache(_config(), probs, _solver(0), _examples(4), [0, 1]) is not None
    assert teacher_cache(_config(kd_cache_max_mb=1), probs, _solver(0), _examples(4), [0, 1]) is not None
    assert teacher_cache(_config(kd_cache=False), probs, _solver(0), _examples(4), [0, 1]) is None


@pytest.mark.parametrize("align,params", ALIGN, ids=["mse-probabilities", "minilm", "minilmv2"])
def test_cached_teacher_gives_the_per_step_teachers_loss(align, params):
    teacher, student = _solver(0).eval(), _solver(1).train()
    examples = _examples(12)
    variant = Variant(name="kd", mode="kd", kd=KDSettings(align_loss=align, align_params=params, relation_heads=4))
    layer_map = [(layer, layer) for layer in range(LAYERS)]
    s_layers, t_layers = qkv_layers(align, layer_map)
    cache = TeacherCache.build(teacher, examples, OUT, t_layers, _cache_keys(variant), batch_size=5)
    for chunk in (examples[:4], examples[4:11]):  # batches padded differently from the cache's batches
        batch = collate(chunk, OUT)
        torch.manual_seed(3)
        with capture_qkv(student.encoder, s_layers) as s_qkv:
            out = student(batch)
        with torch.no_grad(), capture_qkv(teacher.encoder, t_layers) as t_qkv:
            t_logits = teacher(batch).logits
        c_logits, c_qkv = cache.batch(chunk, batch)
        kl = distill_loss(out.logits, t_logits, batch["labels"], 2.0)
        kl_cached = distill_loss(out.logits, c_logits, batch["labels"], 2.0)
        assert float(kl.detach()) > 1e-3 and float(kl_cached.detach()) == pytest.approx(float(kl.detach()), rel=1e-5, abs=1e-6)
        kept = {0: [0, 2, 3], 1: [0, 1, 2, 3]}
        a = alignment_loss(align, layer_map, batch["attention_mask"], student_qkv=s_qkv, teacher_qkv=t_qkv, kept=kept,
                           relation_heads=4, params=params)
        a_cached = alignment_loss(align, layer_map, batch["attention_mask"], student_qkv=s_qkv, teacher_qkv=c_qkv,
                                  kept=kept, relation_heads=4, params=params)
        assert float(a.detach()) > 0 and float(a_cached.detach()) == pytest.approx(float(a.detach()), rel=1e-4, abs=1e-10)


def test_cache_size_estimate_matches_the_tensors():
    teacher, examples = _solver(0), _examples(7)
    cache = TeacherCache.build(teacher, examples, OUT, [0, 1], ("q", "k"))
    held = sum(t.numel() for t in cache.logits.values()) + sum(
        v.numel() for per in cache.qkv.values() for layer in per.values() for v in layer.values())
    assert cache_bytes(examples, OUT.size, {0: 16, 1: 16}, ("q", "k")) == 4 * held


def test_loss_shares():
    kd = KDSettings(lambda_distill=1.0, lambda_task=2.0, align_weight=3.0)
    shares = loss_shares({"kl": [0.2, 0.4], "align": [0.1, 0.1], "task": [0.5, 0.3]}, kd)
    # weighted means: kl 0.3, align 0.3, task 0.8 of a mean objective 1.4
    assert shares == pytest.approx({"kl": 0.3 / 1.4, "align": 0.3 / 1.4, "task": 0.8 / 1.4})
    off = loss_shares({"kl": [0.3], "task": [0.1]}, KDSettings(align_weight=0.0))
    assert off["align"] == 0 and sum(off.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        loss_shares({"kl": [0.0], "task": [0.0]}, kd)


def _config(**kw) -> Config:
    base = {"teacher_stage": "t", "ratio": 0.25, "variants": [{"name": "finetune", "mode": "finetune"}],
            "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "checkpoint_every": 100},
            "score_batches": 2, "score_batch_size": 4, "eval_batch": 8}
    return Config(**{**base, **kw})


def test_one_shot_masks_the_teachers_lowest_heads_before_the_first_step():
    teacher, examples = _solver(0), _examples(16)
    config = _config(reading="one_shot")
    variant = config.variants[0]
    pruner = make_pruner(config, variant, 0, teacher, examples, 8, LAYERS, HEADS)
    batches = [collate(examples[i * 4:(i + 1) * 4], OUT) for i in range(2)]
    once = static_scores(ImportanceSettings(), copy.deepcopy(teacher), batches)
    plan = choose_heads(once, random_order(LAYERS, HEADS, 0), 2, 1)
    assert len(pruner.masked) == pruner.target == 2 and pruner.masked_heads() == plan  # the prune-only heads
    assert pruner.due(0) == 2 and not pruner.step(5)  # nothing more, ever
    progressive = make_pruner(_config(), variant, 0, teacher, examples, 8, LAYERS, HEADS)
    assert progressive.masked == [] and progressive.due(4) == 2  # end 0.5 of 8 steps


def test_ratio0_control_masks_nothing():
    config = _config(variants=[{"name": "control", "mode": "finetune", "ratio": 0.0}])
    assert config.ratio_of(config.variants[0]) == 0.0
    pruner = make_pruner(config, config.variants[0], 0, _solver(0), _examples(8), 8, LAYERS, HEADS)
    assert pruner.target == 0 and pruner.masked == []


@pytest.mark.parametrize("mode", ["finetune", "kd"])
def test_plateau_selection_never_keeps_weights_from_before_the_mask_is_complete(tmp_path, mode):
    teacher = _solver(0).eval()
    train, valid, test = _examples(24, "t"), _examples(8, "v"), _examples(8, "x")
    kd = {"align_params": {"form": "probabilities"}}
    config = _config(variants=[{"name": mode, "mode": mode, "kd": kd}], schedule={"start": 0.0, "end": 0.75},
                     train={"epochs": 2, "batch_size": 4, "lr": 1e-3, "checkpoint_every": 100,
                            "plateau": {"patience": 8, "every_epochs": 0.5}})
    record, student = run_one(config, config.variants[0], 0, teacher, train, valid, test, tmp_path / "run", DistContext())
    steps, scores = record["valid_curve"]["steps"], record["valid_curve"]["accuracy"]
    assert steps == [3, 6, 9, 12]  # every half epoch of 6 steps; the mask is complete at step 9 (0.75 of 12)
    assert scores[:2] == [INELIGIBLE, INELIGIBLE] and min(scores[2:]) >= 0
    assert record["best_step"] >= 9 and record["heads_removed"] == 2  # 25% of 8 heads
    if mode == "kd":
        assert record["kd_cache"] == 1.0 and sum(record["loss_share"].values()) == pytest.approx(1.0)

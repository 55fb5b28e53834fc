"""The alignment-loss dispatcher: each name computes its method's loss on the right layers and heads."""
import pytest
import torch

from methods.attention_alignment import alignment_loss, qkv_layers, uniform_layer_map
from methods.attention_capture import attention_probs, attention_scores
from methods.minilm import attention_distribution_loss, value_relation_loss
from methods.minilmv2 import minilmv2_loss
from methods.tinybert import attention_mse_loss, attention_score_mse_loss


def _qkv(layers, heads=4, dim=6, batch=2, seq=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {l: {n: torch.randn(batch, heads, seq, dim, generator=g) for n in "qkv"} for l in range(layers)}


MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


def test_uniform_layer_map_is_tinybert_g():
    assert uniform_layer_map(3, 6) == [(0, 1), (1, 3), (2, 5)]
    assert uniform_layer_map(6, 6) == [(m, m) for m in range(6)]
    with pytest.raises(ValueError):
        uniform_layer_map(7, 6)


def test_attention_mse_probabilities_form_is_the_former_loss_over_kept_heads():
    """The probability form is the pruning replication's former loss: per layer, MSE of probabilities over
    the heads not masked, mean over layers; the default form is TinyBERT's, on scores, summed over layers."""
    sq, tq = _qkv(3, seed=1), _qkv(3, seed=2)
    masked = {0: [1], 2: [0, 3]}
    kept = {l: [h for h in range(4) if h not in masked.get(l, [])] for l in range(3)}
    layer_map = [(l, l) for l in range(3)]
    s = [attention_probs(sq[l], MASK) for l in range(3)]
    t = [attention_probs(tq[l], MASK) for l in range(3)]
    former = torch.stack([attention_mse_loss(s[l][:, kept[l]], t[l][:, kept[l]], MASK) for l in range(3)]).mean()
    ours = alignment_loss("attention_mse", layer_map, MASK, student_qkv=sq, teacher_qkv=tq, kept=kept,
                          params={"form": "probabilities"})
    assert torch.equal(ours, former)
    scores = sum(attention_score_mse_loss(attention_scores(sq[l])[:, kept[l]], attention_scores(tq[l])[:, kept[l]],
                                          MASK) for l in range(3))
    default = alignment_loss("attention_mse", layer_map, MASK, student_qkv=sq, teacher_qkv=tq, kept=kept)
    assert torch.allclose(default, scores) and not torch.allclose(default, former)


def test_minilm_uses_last_pair_and_kept_heads_only():
    sq, tq = _qkv(2, seed=3), _qkv(6, seed=4)
    s, t = attention_probs(sq[1], MASK), attention_probs(tq[5], MASK)
    kept = {1: [0, 2]}
    expected = (attention_distribution_loss(s[:, [0, 2]], t[:, [0, 2]], MASK)
                + value_relation_loss(sq[1]["v"][:, [0, 2]], tq[5]["v"][:, [0, 2]], MASK))
    ours = alignment_loss("minilm", [(0, 2), (1, 5)], MASK, student_qkv=sq, teacher_qkv=tq, kept=kept)
    assert torch.allclose(ours, expected)
    no_vr = alignment_loss("minilm_no_vr", [(1, 5)], MASK, student_qkv=sq, teacher_qkv=tq, kept=kept)
    assert torch.allclose(no_vr, attention_distribution_loss(s[:, [0, 2]], t[:, [0, 2]], MASK))


def test_minilmv2_allows_different_head_counts_and_is_zero_for_equal_inputs():
    sq, tq = _qkv(1, heads=2, dim=12, seed=5), _qkv(3, heads=4, dim=6, seed=6)
    ours = alignment_loss("minilmv2", [(0, 2)], MASK, student_qkv=sq, teacher_qkv=tq, relation_heads=4)
    assert torch.allclose(ours, minilmv2_loss(sq[0], tq[2], 4, MASK)[0])
    same = alignment_loss("minilmv2", [(0, 0)], MASK, student_qkv=sq, teacher_qkv=sq, relation_heads=4)
    assert same.abs() < 1e-6


def test_equal_captures_give_zero_for_every_loss():
    q = _qkv(2)
    for kind in ("attention_mse", "minilm", "minilm_no_vr", "minilmv2"):
        loss = alignment_loss(kind, [(0, 0), (1, 1)], MASK, student_qkv=q, teacher_qkv=q, relation_heads=4)
        assert loss.abs() < 1e-6, kind


def test_qkv_layers_and_unknown_loss_or_parameter():
    assert qkv_layers("minilm", [(0, 1), (2, 5)]) == ([2], [5])
    assert qkv_layers("minilm_no_vr", [(0, 1), (2, 5)]) == ([2], [5])
    assert qkv_layers("attention_mse", [(0, 1), (1, 3)]) == ([0, 1], [1, 3])
    with pytest.raises(ValueError, match="unknown alignment loss"):
        alignment_loss("hidden_mse", [(0, 0)], MASK, student_qkv={}, teacher_qkv={})
    with pytest.raises(ValueError, match="form"):
        alignment_loss("attention_mse", [(0, 0)], MASK, student_qkv=_qkv(1), teacher_qkv=_qkv(1),
                       params={"form": "logits"})


def test_replication_configs_validate_alignment_parameters_on_load():
    from pydantic import ValidationError

    from replications.attention_distillation.stages.student import Variant
    from replications.dynamic_head_pruning_kd.stages.student import KDSettings

    assert Variant(name="v", loss="attention_mse", loss_params={"form": "probabilities"}).loss_params
    assert "loss_params" not in Variant(name="v", loss="minilm").model_dump()
    for bad in (lambda: Variant(name="v", loss="minilm", loss_params={"form": "scores"}),
                lambda: Variant(name="v", loss="logit_kd", loss_params={"form": "scores"}),
                lambda: KDSettings(align_loss="attention_mse", align_params={"form": "logits"})):
        with pytest.raises((ValueError, ValidationError), match="form|loss_params"):
            bad()
    assert "align_params" not in KDSettings().model_dump()
    assert KDSettings(align_params={"form": "probabilities"}).model_dump()["align_params"] == {"form": "probabilities"}

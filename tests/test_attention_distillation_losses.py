"""Known-answer tests for methods.minilm, methods.minilmv2, methods.tinybert and methods.attention_capture."""
import math

import pytest
import torch

from methods.attention_capture import capture_qkv
from methods.head_removal import remove_heads
from methods.minilm import attention_distribution_loss, minilm_loss, value_relation, value_relation_loss
from methods.minilmv2 import relation_heads, self_attention_relation, minilmv2_loss
from methods.tinybert import HiddenStateMSE, attention_mse_loss


def _attn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).softmax(-1)


def _qkv(batch, heads, length, dim, seed):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(batch, heads, length, dim, generator=g) for n in "qkv"}


MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)


def test_equal_inputs_give_zero_for_every_loss():
    a, v = _attn(2, 4, 5, 5), torch.randn(2, 4, 5, 8)
    assert attention_distribution_loss(a, a, MASK).item() == pytest.approx(0.0, abs=1e-7)
    assert value_relation_loss(v, v, MASK).item() == pytest.approx(0.0, abs=1e-7)
    total, parts = minilm_loss(a, a, v, v, MASK)
    assert total.item() == pytest.approx(0.0, abs=1e-7) and set(parts) == {"attention", "value_relation"}
    qkv = _qkv(2, 4, 5, 8, seed=1)
    assert minilmv2_loss(qkv, qkv, 8, MASK)[0].item() == pytest.approx(0.0, abs=1e-7)
    assert attention_mse_loss(a, a, MASK).item() == 0.0


def test_hand_computed_kl_one_query_two_keys():
    teacher, student = torch.tensor([0.5, 0.5]).view(1, 1, 1, 2), torch.tensor([0.25, 0.75]).view(1, 1, 1, 2)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # = 0.5·ln(4/3)
    assert attention_distribution_loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)
    # direction is KL(teacher ‖ student), not the reverse
    reverse = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert attention_distribution_loss(teacher, student).item() == pytest.approx(reverse, rel=1e-6)


def test_kl_averages_heads_and_valid_queries_only():
    t = torch.tensor([0.5, 0.5, 0.0])
    s = torch.tensor([0.25, 0.75, 0.0])
    teacher = t.expand(1, 2, 3, 3).clone()
    student = teacher.clone()
    student[0, 1, 0] = s  # head 1, query 0 differs; query 2 (padding) differs too but is masked
    student[0, :, 2] = torch.tensor([1.0, 0.0, 0.0])
    mask = torch.tensor([[True, True, False]])
    kl = 0.5 * math.log(4 / 3)
    # 1 differing row among 2 heads × 2 valid queries; zero-probability keys contribute 0 (no NaN)
    assert attention_distribution_loss(student, teacher, mask).item() == pytest.approx(kl / 4, rel=1e-6)


def test_value_relation_is_row_stochastic_and_masks_padded_keys():
    vr = value_relation(torch.randn(2, 3, 5, 4), MASK)
    assert vr.shape == (2, 3, 5, 5)
    torch.testing.assert_close(vr.sum(-1), torch.ones(2, 3, 5))
    assert (vr >= 0).all() and vr[1, :, :, 3:].abs().max() == 0


def test_value_relation_loss_different_widths_same_heads():
    student_v = torch.randn(2, 4, 5, 6, requires_grad=True)
    loss = value_relation_loss(student_v, torch.randn(2, 4, 5, 16), MASK)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert student_v.grad is not None and student_v.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="equal head counts"):
        value_relation_loss(torch.randn(2, 4, 5, 8), torch.randn(2, 12, 5, 8))


def test_relation_heads_layout_and_divisibility():
    x = torch.arange(2 * 3 * 4, dtype=torch.float).view(1, 2, 3, 4)  # H=2, T=3, d=4
    r = relation_heads(x, 4)  # H·d = 8 -> 4 relation heads of width 2
    assert r.shape == (1, 4, 3, 2)
    # concat(head0, head1) has width 8; relation head 2 is columns 4:6 = head 1 dims 0:2
    torch.testing.assert_close(r[0, 2], x[0, 1, :, 0:2])
    with pytest.raises(ValueError, match="divide"):
        relation_heads(x, 3)
    rel = self_attention_relation(x, 4, torch.tensor([[True, True, False]]))
    torch.testing.assert_close(rel.sum(-1), torch.ones(1, 4, 3))


def test_minilmv2_different_heads_and_widths():
    teacher, student = _qkv(2, 12, 5, 32, seed=2), _qkv(2, 4, 5, 48, seed=3)  # 384 and 192, R=8 divides both
    for t in student.values():
        t.requires_grad_(True)
    total, parts = minilmv2_loss(student, teacher, 8, MASK)
    assert set(parts) == {"qq", "kk", "vv"} and torch.isfinite(total) and total.item() > 0
    assert total.item() == pytest.approx(sum(p.item() for p in parts.values()) / 3, rel=1e-6)
    total.backward()
    assert all(t.grad.abs().sum() > 0 for t in student.values())
    only_v, parts_v = minilmv2_loss(student, teacher, 8, MASK, relations=("v",))
    assert only_v.item() == pytest.approx(parts["vv"].item(), rel=1e-6) and set(parts_v) == {"vv"}
    with pytest.raises(ValueError):
        minilmv2_loss(student, teacher, 7, MASK)


def test_attention_mse_known_value_mask_and_head_map():
    teacher = torch.zeros(1, 4, 2, 2)
    student = torch.zeros(1, 2, 2, 2)
    student[0, 0, 0, 0] = 1.0  # one squared error of 1 among the valid entries
    student[0, 1, 1, 1] = 5.0  # key and query 1 are padding: ignored
    mask = torch.tensor([[True, False]])
    assert attention_mse_loss(student, teacher, mask, head_map=[1, 3]).item() == pytest.approx(0.5)
    assert attention_mse_loss(student, teacher, head_map=[1, 3]).item() == pytest.approx(26 / 8)
    a = _attn(1, 4, 3, 3, seed=4)
    assert attention_mse_loss(a[:, [2, 0]], a, head_map=[2, 0]).item() == 0.0
    assert attention_mse_loss(a[:, [2, 0]], a, head_map=[0, 2]).item() > 0
    with pytest.raises(ValueError, match="head_map"):
        attention_mse_loss(a[:, :2], a)


def test_hidden_mse_gradient_reaches_projection():
    torch.manual_seed(0)
    loss_fn = HiddenStateMSE(6, 10)
    student = torch.randn(2, 5, 6, requires_grad=True)
    teacher = torch.randn(2, 5, 10, requires_grad=True)
    loss = loss_fn(student, teacher, MASK)
    expected = ((loss_fn.proj(student) - teacher) ** 2)[MASK].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert loss_fn.proj.weight.grad.abs().sum() > 0 and student.grad.abs().sum() > 0
    assert teacher.grad is None  # teacher detached


@pytest.fixture(scope="module")
def tiny_bert():
    import transformers

    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=50)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


def _linears(model):
    return [m for layer in model.encoder.layer for m in (layer.attention.self.query, layer.attention.self.key,
                                                         layer.attention.self.value)]


def test_capture_qkv_reproduces_hf_attention_and_follows_head_removal(tiny_bert):
    import copy

    ids = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    mask = MASK.long()
    model = copy.deepcopy(tiny_bert)
    with torch.no_grad(), capture_qkv(model) as cap:
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert sorted(cap) == [0, 1]
    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for layer in (0, 1):
        assert {n: tuple(t.shape) for n, t in cap[layer].items()} == {n: (2, 4, 5, 8) for n in "qkv"}
        q, k = cap[layer]["q"], cap[layer]["k"]
        recomputed = (q @ k.transpose(-1, -2) / math.sqrt(8) + additive).softmax(-1)
        torch.testing.assert_close(recomputed, out.attentions[layer], atol=1e-5, rtol=0)
    assert all(not m._forward_hooks for m in _linears(model))  # hooks gone after exit
    model(input_ids=ids, attention_mask=mask)
    assert cap[0]["q"].shape == (2, 4, 5, 8)  # dict no longer updated

    remove_heads(model, {0: [1, 2]})
    with torch.no_grad(), capture_qkv(model, layers=[0]) as cap:
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    assert sorted(cap) == [0] and all(t.shape == (2, 2, 5, 8) for t in cap[0].values())
    recomputed = (cap[0]["q"] @ cap[0]["k"].transpose(-1, -2) / math.sqrt(8) + additive).softmax(-1)
    torch.testing.assert_close(recomputed, out.attentions[0], atol=1e-5, rtol=0)
    assert all(not m._forward_hooks for m in _linears(model))
    with pytest.raises(ValueError, match="unknown attention layer"):
        with capture_qkv(model, layers=[2]):
            pass

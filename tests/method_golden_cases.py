"""Each method of ``methods/`` on a fixed tiny batch, reduced to numbers (see test_method_golden.py).

Inputs come from fixed seeds only; every case returns a tuple of floats (a loss, a sum of outputs,
or the heads a pruning step chooses, as numbers), so one constant per method pins its arithmetic.
"""
from __future__ import annotations

import copy
import functools

import torch

B, CLASSES, HEADS, LEN, DIM = 4, 5, 4, 6, 8


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _logits(seed: int) -> torch.Tensor:
    return torch.randn(B, CLASSES, generator=_g(seed))


def _target() -> torch.Tensor:
    return torch.tensor([0, 2, 4, 1])


def _attn(seed: int) -> torch.Tensor:
    return torch.randn(B, HEADS, LEN, LEN, generator=_g(seed)).softmax(-1)


def _mask() -> torch.Tensor:
    mask = torch.ones(B, LEN)
    mask[1, 4:] = 0
    return mask


def tiny_bert():
    return copy.deepcopy(_bert())


@functools.lru_cache(maxsize=1)
def _bert():
    import transformers

    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, vocab_size=50)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return transformers.BertModel(config).eval()


def _ids() -> torch.Tensor:
    return torch.randint(0, 50, (2, 5), generator=_g(7))


def _probe(x: torch.Tensor) -> torch.Tensor:
    """A fixed random projection of a tensor to one number (a mean of LayerNorm outputs is constant)."""
    return (x * torch.randn(x.shape, generator=_g(99))).sum()


def _plan_numbers(plan: dict[int, list[int]]) -> tuple[float, ...]:
    return tuple(float(10 * layer + head) for layer, heads in sorted(plan.items()) for head in heads)


def logit_kd():
    from methods.logit_kd import kd_kl_loss

    return (kd_kl_loss(_logits(1), _logits(2), temperature=2.0).item(),)


def dkd():
    from methods.dkd import dkd_loss

    return (dkd_loss(_logits(1), _logits(2), _target()).item(),)


def fitnet():
    from methods.fitnet import FitNetHint

    torch.manual_seed(0)
    hint = FitNetHint(3, 6).train()
    return (hint(torch.randn(B, 3, 4, 4, generator=_g(1)), torch.randn(B, 6, 4, 4, generator=_g(2))).item(),)


def ofa():
    from methods.ofa import OFABranches, ofa_total

    torch.manual_seed(0)
    branches = OFABranches([(8, 4, 4), (16, 2, 2)], CLASSES, hidden_dim=16)
    feats = [torch.randn(B, 8, 4, 4, generator=_g(1)), torch.randn(B, 16, 2, 2, generator=_g(2))]
    paper = ofa_total(branches(feats), _logits(3), _logits(4), _target(), eps=1.5, temperature=2.0).item()
    from methods.ofa import OFA, OFAParams  # the registered method's default: OFA-KD's official-code loss

    torch.manual_seed(0)
    method = OFA(OFAParams(ofa_eps=1.5, temperature=2.0), [(8, 4, 4), (16, 2, 2)], None, CLASSES)
    ce = torch.nn.functional.cross_entropy(_logits(3), _target(), label_smoothing=0.1)
    official, _ = method.loss(ce, feats, _logits(3), None, _logits(4), _target(), 0.0)
    return paper, official.item()


def minilm():
    from methods.minilm import minilm_loss

    v_s, v_t = torch.randn(B, HEADS, LEN, DIM, generator=_g(3)), torch.randn(B, HEADS, LEN, DIM, generator=_g(4))
    total, _ = minilm_loss(_attn(1), _attn(2), v_s, v_t, mask=_mask())
    return (total.item(),)


def minilmv2():
    from methods.minilmv2 import minilmv2_loss

    s = {k: torch.randn(B, 2, LEN, 8, generator=_g(i)) for i, k in enumerate("qkv", 1)}
    t = {k: torch.randn(B, 4, LEN, 6, generator=_g(i)) for i, k in enumerate("qkv", 10)}
    total, _ = minilmv2_loss(s, t, num_relation_heads=4, mask=_mask())
    return (total.item(),)


def tinybert():
    from methods.tinybert import HiddenStateMSE, attention_mse_loss, attention_score_mse_loss

    torch.manual_seed(0)
    hidden = HiddenStateMSE(8, 12)
    h = hidden(torch.randn(B, LEN, 8, generator=_g(3)), torch.randn(B, LEN, 12, generator=_g(4)), mask=_mask())
    scores = lambda seed: torch.randn(B, HEADS, LEN, LEN, generator=_g(seed))  # noqa: E731
    return (attention_mse_loss(_attn(1), _attn(2), mask=_mask()).item(), h.item(),
            attention_score_mse_loss(scores(5), scores(6), mask=_mask()).item())


def uhkd():
    from methods.uhkd import UHKDDistiller, uhkd_loss

    torch.manual_seed(0)
    distiller = UHKDDistiller([(8, 8, 8), (17, 16)], [(16, 8, 8), (32, 4, 4)])
    student = [torch.randn(B, 8, 8, 8, generator=_g(1)), torch.randn(B, 17, 16, generator=_g(2))]
    teacher = [torch.randn(B, 16, 8, 8, generator=_g(3)), torch.randn(B, 32, 4, 4, generator=_g(4))]
    s, t = distiller(student, teacher)
    total, _ = uhkd_loss(s, t, _logits(5), _logits(6), _target())
    from methods.uhkd import UHKD, UHKDParams  # the pre-registered reading: per-bin scales, weight = CE at init

    torch.manual_seed(0)
    method = UHKD(UHKDParams(spectrum_norm="teacher_bin_rms", feature_weight_rule="ce_at_init"),
                  [(8, 8, 8), (17, 16)], [(16, 8, 8), (32, 4, 4)], CLASSES)
    ce = torch.nn.functional.cross_entropy(_logits(5), _target())
    calibration = method.calibrate(ce, student, _logits(5), teacher, _logits(6), _target())
    chosen, _ = method.loss(ce, student, _logits(5), teacher, _logits(6), _target(), 0.0)
    return total.item(), calibration["feature_weight"], chosen.item()


def feature_grid():
    from methods.feature_grid import resize_to, to_grid

    tokens = torch.randn(B, 17, 6, generator=_g(1))
    grid = to_grid(tokens, num_prefix_tokens=1)
    return float(sum(grid.shape)), resize_to(grid, (2, 2)).square().sum().item()


def head_importance():
    from methods.head_importance import attention_entropy, combined_score, weight_norms

    model = tiny_bert()
    w = weight_norms(model)
    entropy = attention_entropy([_attn(1), _attn(2)], mask=_mask())
    return w.sum().item(), entropy.sum().item(), combined_score(w, entropy, alpha=0.3).sum().item()


def head_selection():
    from methods.head_selection import heads_to_prune

    return _plan_numbers(heads_to_prune([4, 4, 4], 0.5, seed=3)) + _plan_numbers(
        heads_to_prune([4, 4, 4], 0.25, strategy="random", seed=3))


def iterative_pruning():
    from methods.iterative_pruning import iterative_pruning as prune

    scores = torch.randn(3, 4, generator=_g(1))
    order = []
    curve = prune(3, 4, step=2, steps=3, score=lambda pruned: scores + 0.1 * len(pruned),
                  apply=lambda pruned: order.append(sorted(pruned)), measure=lambda frac, pruned: frac)
    return tuple(frac for frac, _ in curve) + tuple(float(10 * l + h) for l, h in order[-1])


def dynamic_pruning():
    from methods.dynamic_pruning import DynamicHeadPruner

    pruner = DynamicHeadPruner(3, 4, target=5, start=1, end=4, ema=0.5)
    for step in range(6):
        pruner.update(torch.randn(3, 4, generator=_g(step)))
        pruner.step(step + 1)
    return (*_plan_numbers(pruner.masked_heads()), pruner.average.sum().item())


def head_masking():
    from methods.head_masking import mask_heads

    model = tiny_bert()
    with torch.no_grad():
        with mask_heads(model, {0: [1, 3], 1: [0]}):
            masked = model(_ids()).last_hidden_state
    return (_probe(masked).item(),)


def head_removal():
    from methods.head_removal import remove_heads

    model = tiny_bert()
    remove_heads(model, {0: [1, 3], 1: [0]})
    with torch.no_grad():
        out = model(_ids()).last_hidden_state
    return _probe(out).item(), float(sum(p.numel() for p in model.parameters()))


def head_gates():
    from methods.head_gates import HeadGates

    model = tiny_bert()
    gates = HeadGates(model, requires_grad=True)
    with torch.no_grad():
        gates.values.mul_(torch.linspace(0.5, 1.0, 8).view(2, 4))
    _probe(model(_ids()).last_hidden_state).backward()
    grad = gates.take_grad()
    gates.remove()
    model.zero_grad()
    return (grad.sum().item(),)


def attention_heads():
    from methods.attention_heads import attention_layers, num_heads_per_layer

    model = tiny_bert()
    return (float(len(attention_layers(model))), *map(float, num_heads_per_layer(model)))


def attention_capture():
    from methods.attention_capture import attention_probs, attention_scores, capture_qkv

    model = tiny_bert()
    mask = torch.ones(2, 5)
    mask[1, 3:] = 0
    with torch.no_grad(), capture_qkv(model) as qkv:
        model(_ids(), attention_mask=mask)
    return (*(qkv[layer][name].square().sum().item() for layer in (0, 1) for name in ("q", "k", "v")),
            _probe(attention_scores(qkv[1])).item(), _probe(attention_probs(qkv[1], mask)).item())


def attention_alignment():
    from methods.attention_alignment import alignment_loss

    qkv = lambda seed: {layer: {k: torch.randn(B, HEADS, LEN, DIM, generator=_g(seed + 3 * layer + i))
                                for i, k in enumerate("qkv")} for layer in (0, 1)}
    qkv_s, qkv_t = qkv(20), qkv(40)
    return tuple(alignment_loss(kind, [(0, 0), (1, 1)], _mask(), student_qkv=qkv_s, teacher_qkv=qkv_t,
                                kept={0: [0, 1, 2], 1: [1, 3]}, relation_heads=2, params=params).item()
                 for kind, params in (("attention_mse", {}), ("attention_mse", {"form": "probabilities"}),
                                      ("minilm", {}), ("minilm_no_vr", {}), ("minilmv2", {})))


def no_distillation():
    import torch.nn.functional as F

    from methods.no_distillation import CrossEntropyOnly
    from methods.registry import NoParams

    ce = F.cross_entropy(_logits(1), _target())
    loss, _ = CrossEntropyOnly(NoParams(), [], [], CLASSES).loss(ce, None, _logits(1), None, _logits(2), _target(), 0.5)
    return (loss.item(),)


CASES = {name: fn for name, fn in list(globals().items())
         if callable(fn) and not name.startswith("_") and name not in ("tiny_bert",) and fn.__module__ == __name__}

"""Head gates, head-importance scores, dynamic head pruning and logit KD.

Tiny eager BERT encoders (2 layers x 4 heads); every property is checked against an
independent computation (masking/removal, finite differences, hand formulas, brute force).
"""
import copy
import io
import itertools
import math

import methods  # noqa: F401  (torchvision shim before transformers)
import pytest
import torch
import torch.nn.functional as F
from transformers import BertModel

from methods.dynamic_pruning import DynamicHeadPruner
from methods.head_gates import HeadGates
from methods.head_importance import (
    attention_entropy,
    combined_score,
    lowest_heads,
    normalize_per_layer,
    weight_norms,
)
from methods.head_masking import mask_heads
from methods.head_removal import remove_heads
from methods.logit_kd import kd_kl_loss
from tiny_bert import HEADS, HIDDEN, LAYERS, VOCAB, make_model

SEQ = 7
HEAD_DIM = HIDDEN // HEADS
ATOL = 1e-6
PLANS = {
    "partial": {0: [1, 3], 1: [2]},
    "empties_layer": {0: [0], 1: [0, 1, 2, 3]},
}


def inputs(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (2, SEQ), generator=g)
    mask = torch.ones_like(ids)
    mask[1, -2:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def hidden(model, **kw) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs(), **kw).last_hidden_state


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add synchronisation cost (100x on a busy machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def base_model() -> BertModel:
    return make_model()


# --------------------------------------------------------------------------- HeadGates


@pytest.mark.parametrize("plan", PLANS.values(), ids=PLANS.keys())
def test_zero_gates_equal_masking_and_removal(base_model, plan):
    gated = copy.deepcopy(base_model)
    gates = HeadGates(gated)
    assert gates.values.shape == (LAYERS, HEADS)
    gates.set_masked(plan)
    for layer in range(LAYERS):
        for head in range(HEADS):
            assert gates.values[layer, head] == (0.0 if head in plan.get(layer, []) else 1.0)
    out_gated = hidden(gated)

    masked = copy.deepcopy(base_model)
    mask_heads(masked, plan)
    removed = copy.deepcopy(base_model)
    remove_heads(removed, plan)

    torch.testing.assert_close(out_gated, hidden(masked), atol=ATOL, rtol=0)
    torch.testing.assert_close(out_gated, hidden(removed), atol=ATOL, rtol=0)
    # and the mask actually does something
    assert (out_gated - hidden(base_model)).abs().max() > 1e-3


def test_set_masked_resets_previous_mask(base_model):
    model = copy.deepcopy(base_model)
    gates = HeadGates(model)
    gates.set_masked({0: [0, 1, 2]})
    gates.set_masked({1: [3]})
    expected = torch.ones(LAYERS, HEADS)
    expected[1, 3] = 0.0
    torch.testing.assert_close(gates.values, expected)
    reference = copy.deepcopy(base_model)
    mask_heads(reference, {1: [3]})
    torch.testing.assert_close(hidden(model), hidden(reference), atol=ATOL, rtol=0)


def test_remove_restores_ungated_outputs(base_model):
    model = copy.deepcopy(base_model)
    gates = HeadGates(model)
    gates.set_masked({0: [0, 2], 1: [1]})
    assert (hidden(model) - hidden(base_model)).abs().max() > 1e-3
    gates.remove()
    assert torch.equal(hidden(model), hidden(base_model))
    gates.remove()  # idempotent
    assert torch.equal(hidden(model), hidden(base_model))


def test_gates_use_original_indices_after_removal(base_model):
    pre_removed = {0: [1], 1: [0, 3]}
    model = copy.deepcopy(base_model)
    remove_heads(model, pre_removed)
    gates = HeadGates(model)
    assert gates.values.shape == (LAYERS, HEADS)  # original head count
    # all-ones gates change nothing
    reference = copy.deepcopy(base_model)
    remove_heads(reference, pre_removed)
    torch.testing.assert_close(hidden(model), hidden(reference), atol=0, rtol=0)

    gated = {0: [2], 1: [1]}  # original indices; layer 0 head 2 sits at position 1 now
    gates.set_masked(gated)
    expected = copy.deepcopy(base_model)
    remove_heads(expected, {0: [1, 2], 1: [0, 1, 3]})
    torch.testing.assert_close(hidden(model), hidden(expected), atol=ATOL, rtol=0)
    # masking the wrong positional head would give a different answer
    wrong = copy.deepcopy(base_model)
    remove_heads(wrong, {0: [1, 3], 1: [0, 2, 3]})
    assert (hidden(model) - hidden(wrong)).abs().max() > 1e-3
    # gating an already removed head is a no-op
    gates.set_masked({0: [1], 1: [0, 3]})
    torch.testing.assert_close(hidden(model), hidden(reference), atol=0, rtol=0)


def test_gates_on_model_with_emptied_layer(base_model):
    model = copy.deepcopy(base_model)
    remove_heads(model, {1: [0, 1, 2, 3]})
    gates = HeadGates(model)
    gates.set_masked({0: [3], 1: [2]})
    expected = copy.deepcopy(base_model)
    remove_heads(expected, {0: [3], 1: [0, 1, 2, 3]})
    torch.testing.assert_close(hidden(model), hidden(expected), atol=ATOL, rtol=0)


def _loss(model, weights: torch.Tensor) -> torch.Tensor:
    return (model(**inputs()).last_hidden_state * weights).sum()


def test_gate_gradient_matches_finite_difference():
    model = make_model(seed=3).double()
    gates = HeadGates(model, requires_grad=True)
    assert gates.values.dtype == torch.float64
    assert gates.take_grad() is None  # before any backward
    weights = torch.randn(2, SEQ, HIDDEN, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    loss = _loss(model, weights)
    loss.backward()
    grad = gates.take_grad()
    assert grad.shape == (LAYERS, HEADS)
    assert gates.values.grad is None and gates.take_grad() is None  # cleared
    assert (grad >= 0).all() and (grad > 1e-6).all()

    eps = 1e-6
    finite = torch.empty(LAYERS, HEADS, dtype=torch.float64)
    with torch.no_grad():
        base = _loss(model, weights).item()
        assert base == pytest.approx(loss.item(), rel=1e-12)
        for layer, head in itertools.product(range(LAYERS), range(HEADS)):
            gates.values[layer, head] = 1.0 - eps
            finite[layer, head] = (base - _loss(model, weights).item()) / eps
            gates.values[layer, head] = 1.0
    torch.testing.assert_close(grad, finite.abs(), rtol=1e-2, atol=1e-8)
    # the heads differ, so the test is not trivially satisfied by a constant
    assert grad.max() > 1.5 * grad.min()


def test_gate_gradient_zero_for_removed_heads():
    model = make_model(seed=3).double()
    remove_heads(model, {0: [2]})
    gates = HeadGates(model, requires_grad=True)
    weights = torch.randn(2, SEQ, HIDDEN, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    _loss(model, weights).backward()
    grad = gates.take_grad()
    assert grad[0, 2] == 0
    assert (grad[0, [0, 1, 3]] > 0).all() and (grad[1] > 0).all()


def test_gates_need_attention():
    with pytest.raises(ValueError):
        HeadGates(torch.nn.Linear(3, 3))


# --------------------------------------------------------------------------- weight norms


def _hand_norm(model, layer: int, head: int, p: float, position: int | None = None) -> float:
    att = model.encoder.layer[layer].attention
    pos = head if position is None else position
    rows = slice(pos * HEAD_DIM, (pos + 1) * HEAD_DIM)
    parts = [att.self.query.weight[rows], att.self.key.weight[rows], att.self.value.weight[rows],
             att.output.dense.weight[:, rows]]
    return float(torch.linalg.vector_norm(torch.cat([t.detach().reshape(-1) for t in parts]), ord=p))


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_weight_norms_match_hand_computation(base_model, p):
    norms = weight_norms(base_model, p)
    assert norms.shape == (LAYERS, HEADS)
    for layer, head in itertools.product(range(LAYERS), range(HEADS)):
        assert norms[layer, head].item() == pytest.approx(_hand_norm(base_model, layer, head, p), rel=1e-5)


def test_weight_norms_frobenius_of_slices(base_model):
    # p=2 is the Frobenius norm of the four (head_dim x hidden) blocks together
    att = base_model.encoder.layer[1].attention
    rows = slice(2 * HEAD_DIM, 3 * HEAD_DIM)
    squares = sum(float(w.detach().pow(2).sum()) for w in (att.self.query.weight[rows], att.self.key.weight[rows],
                                                  att.self.value.weight[rows], att.output.dense.weight[:, rows]))
    assert weight_norms(base_model)[1, 2].item() == pytest.approx(math.sqrt(squares), rel=1e-5)


def test_weight_norms_nan_for_removed_heads(base_model):
    before = weight_norms(base_model)
    model = copy.deepcopy(base_model)
    remove_heads(model, {0: [1, 2], 1: [3]})
    after = weight_norms(model)
    removed = torch.zeros(LAYERS, HEADS, dtype=torch.bool)
    removed[0, [1, 2]] = True
    removed[1, 3] = True
    assert torch.equal(torch.isnan(after), removed)
    torch.testing.assert_close(after[~removed], before[~removed], rtol=1e-6, atol=0)
    # the kept head at original index 3 of layer 0 now sits at position 1
    assert after[0, 3].item() == pytest.approx(_hand_norm(model, 0, 3, 2.0, position=1), rel=1e-5)


def test_weight_norms_nan_for_emptied_layer(base_model):
    model = copy.deepcopy(base_model)
    remove_heads(model, {1: [0, 1, 2, 3]})
    norms = weight_norms(model)
    assert torch.isnan(norms[1]).all()
    torch.testing.assert_close(norms[0], weight_norms(base_model)[0])


# --------------------------------------------------------------------------- attention entropy


def _one_hot_attention(batch: int, heads: int, q: int, k: int) -> torch.Tensor:
    idx = torch.randint(0, k, (batch, heads, q), generator=torch.Generator().manual_seed(0))
    return F.one_hot(idx, k).float()


def test_entropy_uniform_and_one_hot():
    T = 5
    uniform = torch.full((2, 3, 4, T), 1.0 / T)
    one_hot = _one_hot_attention(2, 3, 4, T)
    ent = attention_entropy([uniform, one_hot])
    assert ent.shape == (2, 3)
    torch.testing.assert_close(ent[0], torch.full((3,), math.log(T)), atol=1e-6, rtol=0)
    torch.testing.assert_close(ent[1], torch.zeros(3), atol=1e-6, rtol=0)


def test_entropy_per_head_and_hand_value():
    # head 0 uniform over 4 keys, head 1 one-hot, head 2 (0.5, 0.5, 0, 0)
    probs = torch.zeros(1, 3, 2, 4)
    probs[:, 0] = 0.25
    probs[:, 1, :, 2] = 1.0
    probs[:, 2, :, :2] = 0.5
    ent = attention_entropy([probs])
    torch.testing.assert_close(ent[0], torch.tensor([math.log(4), 0.0, math.log(2)]), atol=1e-6, rtol=0)


def test_entropy_ignores_masked_query_rows():
    T = 6
    real = torch.full((2, 2, 5, T), 1.0 / T)
    garbage = _one_hot_attention(2, 2, 5, T)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    probs = torch.where(mask[:, None, :, None].bool(), real, garbage)
    ent = attention_entropy([probs], mask)
    torch.testing.assert_close(ent, torch.full((1, 2), math.log(T)), atol=1e-6, rtol=0)
    # without the mask the one-hot rows pull it down: 7 of 10 real rows per head
    unmasked = attention_entropy([probs])
    torch.testing.assert_close(unmasked, torch.full((1, 2), 0.7 * math.log(T)), atol=1e-6, rtol=0)


def test_entropy_mean_over_real_tokens_not_per_sequence():
    # sequence 0: 1 real row of entropy log 4; sequence 1: 3 real rows of entropy 0 -> mean log(4)/4
    probs = torch.zeros(2, 1, 3, 4)
    probs[0] = 0.25
    probs[1, :, :, 0] = 1.0
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    ent = attention_entropy([probs], mask)
    assert ent.item() == pytest.approx(math.log(4) / 4, abs=1e-6)


def test_entropy_of_real_model_with_zero_queries(base_model):
    # zero query projections -> all scores equal -> uniform attention over the real keys
    model = copy.deepcopy(base_model)
    for block in model.encoder.layer:
        torch.nn.init.zeros_(block.attention.self.query.weight)
        torch.nn.init.zeros_(block.attention.self.query.bias)
    batch = inputs()
    batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
    batch["attention_mask"][:, -2:] = 0  # both sequences: SEQ - 2 real keys
    with torch.no_grad():
        att = model(**batch, output_attentions=True).attentions
    ent = attention_entropy(list(att), batch["attention_mask"])
    torch.testing.assert_close(ent, torch.full((LAYERS, HEADS), math.log(SEQ - 2)), atol=1e-5, rtol=0)
    with torch.no_grad():
        att = base_model(**batch, output_attentions=True).attentions
    ent = attention_entropy(list(att), batch["attention_mask"])
    assert ((ent > 0) & (ent <= math.log(SEQ - 2) + 1e-5)).all()


# --------------------------------------------------------------------------- normalisation and combined score


def _scores_with_nan() -> torch.Tensor:
    s = torch.randn(3, 5, generator=torch.Generator().manual_seed(7)) * 3 + 1
    s[0, 2] = float("nan")
    s[2, [0, 4]] = float("nan")
    return s


def test_minmax_normalisation():
    s = _scores_with_nan()
    out = normalize_per_layer(s, "minmax")
    nan = torch.isnan(s)
    assert torch.equal(torch.isnan(out), nan)
    for row_in, row_out, row_nan in zip(s, out, nan):
        vals, got = row_in[~row_nan], row_out[~row_nan]
        assert got.min().item() == pytest.approx(0.0, abs=1e-6)
        assert got.max().item() == pytest.approx(1.0, abs=1e-6)
        torch.testing.assert_close(got, (vals - vals.min()) / (vals.max() - vals.min()), atol=1e-6, rtol=0)


def test_minmax_constant_row_and_single_value():
    s = torch.tensor([[2.0, 2.0, 2.0], [float("nan"), 5.0, float("nan")], [1.0, 3.0, 2.0]])
    out = normalize_per_layer(s, "minmax")
    torch.testing.assert_close(out[0], torch.full((3,), 0.5))
    assert out[1, 1] == 0.5 and torch.isnan(out[1, [0, 2]]).all()
    torch.testing.assert_close(out[2], torch.tensor([0.0, 1.0, 0.5]))


def test_l2_normalisation():
    s = _scores_with_nan().abs()
    out = normalize_per_layer(s, "l2")
    nan = torch.isnan(s)
    assert torch.equal(torch.isnan(out), nan)
    for row_in, row_out, row_nan in zip(s, out, nan):
        got = row_out[~row_nan]
        assert torch.linalg.vector_norm(got).item() == pytest.approx(1.0, abs=1e-6)
        torch.testing.assert_close(got, row_in[~row_nan] / row_in[~row_nan].norm(), atol=1e-6, rtol=0)


def test_normalisation_errors_and_none():
    s = _scores_with_nan()
    out = normalize_per_layer(s, "none")
    assert torch.equal(torch.isnan(out), torch.isnan(s))
    torch.testing.assert_close(out, s, equal_nan=True)
    with pytest.raises(ValueError):
        normalize_per_layer(s, "zscore")


def test_combined_score_extremes():
    g = torch.Generator().manual_seed(11)
    w = torch.rand(2, 4, generator=g) + 0.5
    entropy = torch.rand(2, 4, generator=g) * 2
    torch.testing.assert_close(combined_score(w, entropy, 1.0), normalize_per_layer(w, "minmax"))
    at0 = combined_score(w, entropy, 0.0)
    torch.testing.assert_close(at0, normalize_per_layer(-entropy, "minmax"))
    # default sign -1: the lowest-entropy head of each layer is the most important (score 1)
    assert torch.equal(at0.argmax(dim=1), entropy.argmin(dim=1))
    assert torch.equal(at0.argmin(dim=1), entropy.argmax(dim=1))
    plus = combined_score(w, entropy, 0.0, entropy_sign=1)
    assert torch.equal(plus.argmax(dim=1), entropy.argmax(dim=1))
    mid = combined_score(w, entropy, 0.3, normalize="l2")
    torch.testing.assert_close(mid, 0.3 * normalize_per_layer(w, "l2") + 0.7 * normalize_per_layer(-entropy, "l2"))


@pytest.mark.parametrize("kw", [{"alpha": -0.1}, {"alpha": 1.5}, {"alpha": 0.5, "entropy_sign": 0},
                                {"alpha": 0.5, "entropy_sign": 2}])
def test_combined_score_invalid_arguments(kw):
    with pytest.raises(ValueError):
        combined_score(torch.ones(2, 4), torch.ones(2, 4), **kw)


def test_combined_score_shape_mismatch():
    with pytest.raises(ValueError):
        combined_score(torch.ones(2, 4), torch.ones(2, 3), 0.5)


# --------------------------------------------------------------------------- lowest_heads


def test_lowest_heads_plain_ranking():
    scores = torch.randperm(12, generator=torch.Generator().manual_seed(2)).float().reshape(3, 4)
    order = sorted(((float(scores[l, h]), l, h) for l in range(3) for h in range(4)))
    for k in range(13):
        got = lowest_heads(scores, k)
        assert got == [(l, h) for _, l, h in order[:k]]


def test_lowest_heads_skips_excluded_and_nan_and_breaks_ties_by_position():
    scores = torch.tensor([[0.0, 5.0, 1.0, 1.0], [float("nan"), 1.0, 0.5, 9.0]])
    assert lowest_heads(scores, 4, exclude={(0, 0)}) == [(1, 2), (0, 2), (0, 3), (1, 1)]
    assert (1, 0) not in lowest_heads(scores, 7)
    with pytest.raises(ValueError):
        lowest_heads(scores, 8)  # only 7 non-NaN heads


def test_lowest_heads_min_per_layer():
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]])
    assert lowest_heads(scores, 4, min_per_layer=1) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert lowest_heads(scores, 4, min_per_layer=2) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    # excluded (already pruned) heads count as gone: only one more of layer 0 may go
    assert lowest_heads(scores, 2, exclude={(0, 0), (0, 1)}, min_per_layer=1) == [(0, 2), (1, 0)]
    with pytest.raises(ValueError):
        lowest_heads(scores, 5, min_per_layer=2)
    with pytest.raises(ValueError):
        lowest_heads(scores, 7, min_per_layer=1)
    assert len(lowest_heads(scores, 6, min_per_layer=1)) == 6


def test_lowest_heads_is_optimal_under_layer_constraint():
    """Brute force: the choice has the smallest total score of all feasible sets."""
    g = torch.Generator().manual_seed(4)
    for trial in range(6):
        scores = torch.rand(2, 4, generator=g)
        scores[trial % 2, trial % 4] = float("nan")
        exclude = {(1 - trial % 2, trial % 3)}
        candidates = [(l, h) for l in range(2) for h in range(4)
                      if not math.isnan(scores[l, h]) and (l, h) not in exclude]
        for min_per_layer in (0, 1, 2):
            for k in range(len(candidates) + 1):
                feasible = [c for c in itertools.combinations(candidates, k)
                            if all(sum(1 for x in candidates if x[0] == l and x not in c) >= min_per_layer
                                   for l in range(2))]
                if not feasible:
                    with pytest.raises(ValueError):
                        lowest_heads(scores, k, exclude, min_per_layer)
                    continue
                got = lowest_heads(scores, k, exclude, min_per_layer)
                assert len(got) == len(set(got)) == k
                assert tuple(sorted(got)) in {tuple(sorted(c)) for c in feasible}
                best = min(sum(float(scores[l, h]) for l, h in c) for c in feasible)
                assert sum(float(scores[l, h]) for l, h in got) == pytest.approx(best, abs=1e-6)


# --------------------------------------------------------------------------- DynamicHeadPruner


def test_due_schedule():
    pruner = DynamicHeadPruner(2, 4, target=6, start=10, end=30)
    dues = [pruner.due(s) for s in range(0, 60)]
    assert dues[:11] == [0] * 11
    assert all(a <= b for a, b in zip(dues, dues[1:]))
    assert dues[30:] == [6] * 30 and dues[29] < 6
    assert pruner.due(20) == 3
    assert set(dues) == set(range(7))  # linear growth passes every count
    instant = DynamicHeadPruner(2, 4, target=3, start=5, end=5)
    assert [instant.due(s) for s in (0, 4, 5, 6)] == [0, 0, 3, 3]


@pytest.mark.parametrize("kw", [{"target": 9}, {"target": -1}, {"start": 5, "end": 4}, {"start": -1},
                                {"ema": 1.0}, {"ema": -0.1}])
def test_pruner_invalid_arguments(kw):
    args = {"num_layers": 2, "num_heads": 4, "target": 3, "start": 0, "end": 10, **kw}
    with pytest.raises(ValueError):
        DynamicHeadPruner(**args)


def test_ema_average():
    pruner = DynamicHeadPruner(2, 4, target=2, start=0, end=10, ema=0.75)
    g = torch.Generator().manual_seed(9)
    a, b, c = (torch.rand(2, 4, generator=g) for _ in range(3))
    pruner.update(a)
    torch.testing.assert_close(pruner.average, a)
    pruner.update(b)
    torch.testing.assert_close(pruner.average, 0.75 * a + 0.25 * b)
    pruner.update(c)
    torch.testing.assert_close(pruner.average, 0.75 * (0.75 * a + 0.25 * b) + 0.25 * c)
    snapshot = pruner.average.clone()
    a[0, 0] = 100.0  # the first update copied: mutating the caller's tensor changes nothing
    c.mul_(-1)
    torch.testing.assert_close(pruner.average, snapshot)


def test_update_rejects_nan_and_wrong_shape():
    pruner = DynamicHeadPruner(2, 4, target=2, start=0, end=10)
    bad = torch.ones(2, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError):
        pruner.update(bad)
    with pytest.raises(ValueError):
        pruner.update(torch.ones(4, 2))
    assert pruner.updates == 0


def test_step_masks_due_heads_cumulatively_lowest_first():
    # fixed scores, so the masking order is the ascending score order; min_per_layer=0
    scores = torch.tensor([[5.0, 0.0, 7.0, 2.0], [1.0, 6.0, 3.0, 4.0]])
    ranking = [(0, 1), (1, 0), (0, 3), (1, 2), (1, 3), (0, 0)]
    pruner = DynamicHeadPruner(2, 4, target=6, start=3, end=15, min_per_layer=0)
    history = []
    for step in range(20):
        pruner.update(scores)
        before = list(pruner.masked)
        changed = pruner.step(step)
        assert len(pruner.masked) == pruner.due(step)
        assert pruner.masked[:len(before)] == before  # never unmasks or reorders
        assert changed == (len(pruner.masked) > len(before))
        history.append(list(pruner.masked))
    assert pruner.masked == ranking
    assert pruner.masked_heads() == {0: [0, 1, 3], 1: [0, 2, 3]}
    # going back in time unmasks nothing
    assert pruner.step(0) is False and pruner.masked == ranking


def test_step_follows_changing_average_and_min_per_layer():
    pruner = DynamicHeadPruner(2, 4, target=4, start=0, end=4, ema=0.5, min_per_layer=1)
    # step 1: (1, 1) lowest
    pruner.update(torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 0.0, 5.0, 5.0]]))
    pruner.step(1)
    assert pruner.masked == [(1, 1)]
    # layer 1's remaining heads become the lowest; the average moves to 2.5 for them
    pruner.update(torch.tensor([[5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(pruner.average[1], torch.tensor([2.5, 0.0, 2.5, 2.5]))
    pruner.step(4)  # three more: only two of layer 1 may go, then the lowest of layer 0
    assert pruner.masked[:3] == [(1, 1), (1, 0), (1, 2)]
    assert pruner.masked[3] == (0, 0)
    assert pruner.masked_heads() == {0: [0], 1: [0, 1, 2]}


def test_step_with_order_ignores_scores():
    order = [(1, 3), (0, 0), (0, 2), (1, 1), (0, 1)]
    pruner = DynamicHeadPruner(2, 4, target=5, start=0, end=5, order=order)
    for step in range(1, 7):
        pruner.update(torch.arange(8.0).reshape(2, 4))  # would pick (0, 0), (0, 1), ...
        pruner.step(step)
        assert pruner.masked == order[:pruner.due(step)]
    assert pruner.masked == order


def _random_scores(seed: int, n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 4, generator=g) for _ in range(n)]


def test_state_dict_round_trip():
    kwargs = dict(num_layers=2, num_heads=4, target=5, start=2, end=12, ema=0.8, min_per_layer=1)
    original = DynamicHeadPruner(**kwargs)
    stream = _random_scores(13, 20)
    for step, s in enumerate(stream[:6], start=1):
        original.update(s)
        original.step(step)
    assert 0 < len(original.masked) < 5
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = DynamicHeadPruner(**kwargs)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.masked == original.masked and restored.updates == original.updates == 6
    torch.testing.assert_close(restored.average, original.average)
    for step, s in enumerate(stream[6:], start=7):
        original.update(s)
        restored.update(s)
        assert original.step(step) == restored.step(step)
        assert restored.masked == original.masked
        torch.testing.assert_close(restored.average, original.average)
    assert len(original.masked) == 5


def test_state_dict_is_a_snapshot_and_empty_round_trips():
    pruner = DynamicHeadPruner(2, 4, target=2, start=0, end=2)
    empty = pruner.state_dict()
    other = DynamicHeadPruner(2, 4, target=2, start=0, end=2)
    other.load_state_dict(empty)
    assert other.masked == [] and other.updates == 0
    pruner.update(torch.ones(2, 4))
    state = pruner.state_dict()
    pruner.update(torch.zeros(2, 4))
    torch.testing.assert_close(state["average"], torch.ones(2, 4))
    other.load_state_dict(state)
    other.update(torch.zeros(2, 4))  # not treated as a first update
    torch.testing.assert_close(other.average, torch.full((2, 4), 0.9))


# --------------------------------------------------------------------------- kd_kl_loss


def test_kd_zero_for_equal_logits():
    logits = torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0)) * 4
    for t in (0.5, 1.0, 4.0):
        assert kd_kl_loss(logits, logits.clone(), t).item() == pytest.approx(0.0, abs=1e-6)
        assert kd_kl_loss(logits, logits + 3.0, t).item() == pytest.approx(0.0, abs=1e-5)  # shift invariant


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_kd_two_class_hand_value(temperature):
    s, t = (0.3, -1.2), (2.0, 1.5)

    def softmax(x):
        e = [math.exp(v / temperature) for v in x]
        return [v / sum(e) for v in e]

    p, q = softmax(t), softmax(s)
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) * temperature ** 2
    got = kd_kl_loss(torch.tensor([s]), torch.tensor([t]), temperature)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # direction matters: KL(teacher || student), not the reverse
    reverse = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q)) * temperature ** 2
    assert abs(expected - reverse) > 1e-3


def test_kd_reduction_none_and_mask():
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    per_row = kd_kl_loss(student, teacher, 2.0, reduction="none")
    assert per_row.shape == (2, 3)
    assert (per_row >= -1e-7).all()
    kl = F.kl_div(F.log_softmax(student / 2, -1), F.log_softmax(teacher / 2, -1), log_target=True,
                  reduction="none").sum(-1)
    torch.testing.assert_close(per_row, kl * 4.0)
    torch.testing.assert_close(kd_kl_loss(student, teacher, 2.0), per_row.mean())
    mask = torch.tensor([[True, False, True], [False, False, True]])
    torch.testing.assert_close(kd_kl_loss(student, teacher, 2.0, mask=mask), per_row[mask].mean())
    assert kd_kl_loss(student, teacher, 2.0, mask=torch.zeros(2, 3, dtype=torch.bool)).item() == 0.0


def test_kd_teacher_gets_no_gradient():
    g = torch.Generator().manual_seed(2)
    student = torch.randn(4, 6, generator=g).requires_grad_()
    teacher = torch.randn(4, 6, generator=g).requires_grad_()
    kd_kl_loss(student, teacher, 3.0).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    # gradient T^2 * (q - p) / T / rows
    p, q = F.softmax(teacher.detach() / 3, -1), F.softmax(student.detach() / 3, -1)
    torch.testing.assert_close(student.grad, 9.0 * (q - p) / 3.0 / 4)


@pytest.mark.parametrize("kw", [{"temperature": 0.0}, {"reduction": "sum"}])
def test_kd_invalid_arguments(kw):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError):
        kd_kl_loss(x, x, **kw)


def test_kd_shape_mismatch():
    with pytest.raises(ValueError):
        kd_kl_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError):
        kd_kl_loss(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.ones(3, dtype=torch.bool))

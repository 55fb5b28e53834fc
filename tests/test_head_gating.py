"""Per-input head gating (methods/head_gating.py), checked against the unpruned model and real head removal.

Tiny eager BERT encoders (2 layers x 4 heads); inputs of different lengths so padding is exercised.
"""
import copy

import methods  # noqa: F401  (torchvision shim before transformers)
import pytest
import torch

from methods.head_gating import GatingParams, PerInputHeadGating, choose_kept, input_entropy
from methods.head_importance import combined_score, weight_norms
from methods.head_removal import remove_heads
from tiny_bert import HEADS, VOCAB, make_model

SEQ, BATCH = 9, 6
MODES = ("mask", "gather")


def make_inputs(seed: int = 1, batch: int = BATCH) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch, SEQ), generator=g)
    mask = torch.ones(batch, SEQ, dtype=torch.long)
    for i in range(batch):
        mask[i, SEQ - (i % 4):] = 0  # lengths SEQ, SEQ-1, ...: padded keys and queries
    return {"input_ids": ids * mask, "attention_mask": mask}


def run(model, inputs):
    with torch.no_grad():
        return model(**inputs).last_hidden_state


@pytest.mark.parametrize("mode", MODES)
def test_ratio_zero_equals_unpruned_model_exactly(mode):
    model, inputs = make_model(), make_inputs()
    reference = run(model, inputs)
    with PerInputHeadGating(model, {0: 0, 1: 0}, mode=mode) as gating:
        gated = run(model, inputs)
        assert gating.last_skipped == {}
    assert torch.equal(gated, reference)
    assert torch.equal(run(model, inputs), reference)  # removed: the blocks' own forward again


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layer", [0, 1])
def test_skipping_one_head_equals_removing_that_head_for_that_input(mode, layer):
    model, inputs = make_model(), make_inputs()
    with PerInputHeadGating(model, {layer: 1}, mode=mode) as gating:
        gated = run(model, inputs)
        skipped = gating.last_skipped[layer]
    assert skipped.shape == (BATCH, 1)
    for i in range(BATCH):
        pruned = copy.deepcopy(model)
        remove_heads(pruned, {layer: [int(skipped[i, 0])]})
        one = {k: v[i:i + 1] for k, v in inputs.items()}
        real = one["attention_mask"][0].bool()
        assert torch.allclose(gated[i][real], run(pruned, one)[0][real], atol=1e-5), f"input {i}"


@pytest.mark.parametrize("batch", [1, BATCH])
def test_gather_and_mask_agree_and_batching_does_not_change_an_input(batch):
    model, inputs = make_model(), make_inputs(batch=batch)
    outs = {}
    for mode in MODES:
        with PerInputHeadGating(model, {0: 2, 1: 1}, mode=mode):
            outs[mode] = run(model, inputs)
    assert torch.allclose(outs["mask"], outs["gather"], atol=1e-5)
    with PerInputHeadGating(model, {0: 2, 1: 1}, mode="gather"):
        alone = run(model, {k: v[:1] for k, v in inputs.items()})
    assert torch.allclose(alone[0], outs["gather"][0], atol=1e-5)


def test_choice_differs_across_inputs_when_their_scores_differ():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.7], [0.1, 0.9, 0.7, 0.5], [0.5, 0.5, 0.5, 0.5]])
    kept, skipped = choose_kept(scores, 2)
    assert kept.tolist() == [[0, 3], [1, 2], [0, 1]]  # ties keep the lower index
    assert skipped.tolist() == [[1, 2], [0, 3], [2, 3]]
    with pytest.raises(ValueError, match="at least one head"):
        choose_kept(scores, 4)


def test_model_inputs_get_their_own_heads_from_their_own_entropy():
    model, inputs = make_model(), make_inputs()
    params = GatingParams(alpha=0.0)  # entropy only: the choice follows each input's attention
    with PerInputHeadGating(model, {0: 2}, params=params) as gating:
        run(model, inputs)
        skipped = gating.last_skipped[0]
    # independently: each input's entropies from output_attentions of the unpruned layer 0
    with torch.no_grad():
        probs = model(**inputs, output_attentions=True).attentions[0]
    entropy = input_entropy(probs, inputs["attention_mask"].bool())
    expected = choose_kept(combined_score(torch.zeros(BATCH, HEADS), entropy, 0.0), 2)[1]
    assert torch.equal(skipped, expected)
    assert len({tuple(row) for row in skipped.tolist()}) > 1, "every input skipped the same heads"


def test_weight_norm_only_skips_the_same_heads_for_every_input():
    model, inputs = make_model(), make_inputs()
    with PerInputHeadGating(model, {1: 1}, params=GatingParams(alpha=1.0)) as gating:
        run(model, inputs)
        skipped = gating.last_skipped[1]
    lowest = int(torch.argmin(weight_norms(model)[1]))
    assert skipped.flatten().tolist() == [lowest] * BATCH


def test_removed_heads_are_not_gated_and_indices_stay_original():
    model, inputs = make_model(), make_inputs()
    remove_heads(model, {0: [0, 2]})
    with PerInputHeadGating(model, {0: 1}, record=True) as gating:
        run(model, inputs)
        run(model, inputs)
    assert set(gating.last_skipped[0].flatten().tolist()) <= {1, 3}
    assert len(gating.history[0]) == 2
    with pytest.raises(ValueError, match="cannot skip 2 of its 2 heads"):
        PerInputHeadGating(model, {0: 2})
    with pytest.raises(ValueError, match="unknown attention layer"):
        PerInputHeadGating(model, {5: 1})

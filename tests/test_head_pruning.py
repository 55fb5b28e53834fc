"""Head masking and physical head removal: pruned == masked, == transformers prune_heads, errors."""
import copy

import methods  # noqa: F401  (torchvision shim before transformers/timm)
import pytest
import timm
import torch
from timm.layers import Attention as TimmAttention
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertLMHeadModel,
    PreTrainedModel,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from methods import attention_layers, mask_heads, num_heads_per_layer, remove_heads, removed_heads

LAYERS, HEADS, HIDDEN, VOCAB, SEQ = 4, 6, 96, 100, 9
PLAN = {0: [1, 4], 1: range(HEADS), 3: [0, 2, 5]}  # different counts, layer 1 loses every head
PARTIAL = {0: [1, 4], 2: [5], 3: [0, 2, 3, 5]}  # transformers' prune_heads cannot empty a layer
ATOL = 1e-5

FAMILIES = {
    "bert": (BertConfig, BertForSequenceClassification),
    "roberta": (RobertaConfig, RobertaForSequenceClassification),
}


def make_model(family: str, impl: str, seed: int = 0) -> PreTrainedModel:
    config_cls, model_cls = FAMILIES[family]
    config = config_cls(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=128, max_position_embeddings=32, num_labels=3, attn_implementation=impl,
    )
    torch.manual_seed(seed)
    return model_cls(config).eval()


def inputs(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (2, SEQ), generator=g)
    mask = torch.ones_like(ids)
    mask[1, -3:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def run(model, **kw):
    with torch.no_grad():
        out = model(**inputs(), output_hidden_states=True, **kw)
    return out.logits, out.hidden_states[-1]


def pruned_and_masked(model, plan):
    pruned, masked = copy.deepcopy(model), copy.deepcopy(model)
    remove_heads(pruned, plan)
    mask_heads(masked, plan)
    return pruned, masked


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def removed_param_count(plan, hidden: int, head_dim: int) -> int:
    per_head = 3 * (hidden * head_dim + head_dim) + head_dim * hidden
    return per_head * sum(len(set(h)) for h in plan.values())


both_impls = pytest.mark.parametrize("impl", ["eager", "sdpa"])
both_families = pytest.mark.parametrize("family", sorted(FAMILIES))


@both_families
@both_impls
def test_pruned_equals_masked(family, impl):
    model = make_model(family, impl)
    pruned, masked = pruned_and_masked(model, PLAN)
    assert num_heads_per_layer(pruned) == [4, 0, 6, 3]
    logits, hidden = run(pruned)
    ref_logits, ref_hidden = run(masked)
    torch.testing.assert_close(hidden, ref_hidden, atol=ATOL, rtol=0)
    torch.testing.assert_close(logits, ref_logits, atol=ATOL, rtol=0)
    assert not torch.allclose(run(model)[1], ref_hidden, atol=1e-3)  # the masks do something


@both_families
@both_impls
def test_equals_transformers_prune_heads(family, impl):
    if not hasattr(PreTrainedModel, "prune_heads"):
        pytest.skip("this transformers has no PreTrainedModel.prune_heads (removed in 5.x)")
    model = make_model(family, impl)
    ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
    remove_heads(ours, PARTIAL)
    theirs.prune_heads({k: list(v) for k, v in PARTIAL.items()})
    for a, b in zip(run(ours), run(theirs)):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert ours_sd.keys() == theirs_sd.keys()
    for key, value in ours_sd.items():
        assert torch.equal(value, theirs_sd[key]), key
    assert ours.config.pruned_heads == {k: sorted(v) for k, v in theirs.config.pruned_heads.items()}


@both_families
def test_parameter_count_drops_by_removed_weights(family):
    model = make_model(family, "eager")
    pruned = copy.deepcopy(model)
    remove_heads(pruned, PLAN)
    assert n_params(model) - n_params(pruned) == removed_param_count(PLAN, HIDDEN, HIDDEN // HEADS)


@both_impls
def test_successive_calls_equal_one_call_with_union(impl):
    model = make_model("bert", impl)
    first, second = {0: [1], 1: [0, 2, 4], 3: [5]}, {0: [4, 1], 1: [1, 3, 5], 3: [0, 2]}
    union = {k: sorted(set(first.get(k, [])) | set(second.get(k, []))) for k in first.keys() | second.keys()}
    stepwise, once = copy.deepcopy(model), copy.deepcopy(model)
    assert remove_heads(stepwise, first) == {0: [1], 1: [0, 2, 4], 3: [5]}
    assert remove_heads(stepwise, second) == {0: [4], 1: [1, 3, 5], 3: [0, 2]}  # head 1 of layer 0 already gone
    remove_heads(once, union)
    assert removed_heads(stepwise) == removed_heads(once) == union
    assert stepwise.config.pruned_heads == once.config.pruned_heads == union
    for a, b in zip(run(stepwise), run(once)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    _, masked = pruned_and_masked(model, union)
    torch.testing.assert_close(run(stepwise)[0], run(masked)[0], atol=ATOL, rtol=0)


@both_families
@both_impls
def test_output_attentions_have_reduced_head_count(family, impl):
    pruned = make_model(family, impl)
    remove_heads(pruned, PLAN)
    with torch.no_grad():
        out = pruned(**inputs(), output_attentions=True)
    assert [a.shape for a in out.attentions] == [(2, n, SEQ, SEQ) for n in (4, 0, 6, 3)]


def test_mask_handle_remove_and_mask_survives_removal():
    model = make_model("bert", "sdpa")
    reference = run(model)[1]
    masked = copy.deepcopy(model)
    with mask_heads(masked, {2: [0, 3]}) as handle:
        assert handle.heads == {2: [0, 3]}
        masked_hidden = run(masked)[1]
        remove_heads(masked, {2: [1]})  # the mask follows the new head layout
        _, both = pruned_and_masked(model, {2: [0, 1, 3]})
        torch.testing.assert_close(run(masked)[1], run(both)[1], atol=ATOL, rtol=0)
    assert not torch.allclose(masked_hidden, reference, atol=1e-3)
    unmasked = copy.deepcopy(model)
    mask_heads(unmasked, {2: [0]}).remove()
    torch.testing.assert_close(run(unmasked)[1], reference, atol=0, rtol=0)


def test_pruned_model_survives_save_and_load(tmp_path):
    model = make_model("roberta", "eager")
    pruned = copy.deepcopy(model)
    remove_heads(pruned, PLAN)
    pruned.save_pretrained(tmp_path)
    loaded = RobertaForSequenceClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    # from_pretrained re-prunes from config.pruned_heads; this restores the emptied layer's stand-in
    remove_heads(loaded, loaded.config.pruned_heads)
    assert num_heads_per_layer(loaded) == num_heads_per_layer(pruned)
    for a, b in zip(run(loaded), run(pruned)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_empty_decoder_layer_rejects_kv_cache():
    config = BertConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=HEADS,
        intermediate_size=128, is_decoder=True, attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    model = BertLMHeadModel(config).eval()
    pruned, masked = pruned_and_masked(model, {0: range(HEADS)})
    ids = inputs()["input_ids"]
    with torch.no_grad(), pytest.raises(ValueError, match="all heads removed.*use_cache=False"):
        pruned(ids, use_cache=True)
    with torch.no_grad():
        torch.testing.assert_close(pruned(ids, use_cache=False).logits, masked(ids).logits, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_timm_vit_pruned_equals_masked(fused):
    torch.manual_seed(0)
    vit = VisionTransformer(
        img_size=32, patch_size=8, embed_dim=HIDDEN, depth=LAYERS, num_heads=HEADS, num_classes=10
    ).eval()
    for _, adapter in attention_layers(vit):
        adapter.module.fused_attn = fused
    pruned, masked = pruned_and_masked(vit, PLAN)
    assert num_heads_per_layer(pruned) == [4, 0, 6, 3]
    assert n_params(vit) - n_params(pruned) == removed_param_count(PLAN, HIDDEN, HIDDEN // HEADS)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out, ref = pruned(x), masked(x)
        torch.testing.assert_close(pruned.forward_features(x), masked.forward_features(x), atol=ATOL, rtol=0)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    with torch.no_grad():
        assert not torch.allclose(vit(x), ref, atol=1e-4)


def test_timm_create_model_and_gated_attention():
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, num_classes=10)
    plan = {0: [0, 2], 5: [0, 1, 2], 11: [1]}
    pruned, masked = pruned_and_masked(vit.eval(), plan)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), atol=ATOL, rtol=0)
    torch.manual_seed(0)
    gated = TimmAttention(HIDDEN, num_heads=HEADS, qkv_bias=True, gated=True).eval()
    pruned, masked = pruned_and_masked(gated, {0: [1, 2, 5]})
    tokens = torch.randn(2, 5, HIDDEN)
    with torch.no_grad():
        torch.testing.assert_close(pruned(tokens), masked(tokens), atol=ATOL, rtol=0)


@pytest.mark.parametrize("apply", [remove_heads, mask_heads])
def test_invalid_inputs_raise_clear_errors(apply):
    model = make_model("bert", "eager")
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"layer 2 \(BertAttention\): head index 6 out of range.*6 heads"):
        apply(model, {0: [1], 2: [0, 6]})
    with pytest.raises(ValueError, match=r"layer index 4 out of range.*4 supported attention layers"):
        apply(model, {4: [0]})
    with pytest.raises(ValueError, match=r"head index -1 out of range"):
        apply(model, {0: [-1]})
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing half-applied
    mha = nn.Sequential(nn.Linear(8, 8), nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError, match=r"no supported attention module in Sequential.*MultiheadAttention"):
        apply(mha, {0: [0]})
    with pytest.raises(ValueError, match=r"no supported attention module in Linear"):
        apply(nn.Linear(4, 4), {0: [0]})


def test_scale_norm_blocks_removal_but_not_masking():
    attn = TimmAttention(HIDDEN, num_heads=HEADS, scale_norm=True, norm_layer=nn.LayerNorm)
    with pytest.raises(ValueError, match=r"layer 0 \(Attention\): cannot remove heads: scale_norm"):
        remove_heads(attn, {0: [1]})
    assert num_heads_per_layer(attn) == [HEADS]
    mask_heads(attn, {0: [1]})

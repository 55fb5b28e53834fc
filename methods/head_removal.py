"""Physically remove attention heads: Q/K/V rows and output-projection columns leave the weights.

State that changes:
* per block: the sliced Linear weights (same Linear modules, new Parameters), the head-count
  attributes the forward reads (BERT: ``num_attention_heads``, ``all_head_size``; timm:
  ``num_heads``, ``attn_dim``) and ``pruned_heads`` (original indices removed so far);
* BERT/RoBERTa block that loses every head: ``attention.self`` becomes a
  :class:`~methods.attention_heads.NoHeadsSelfAttention`, so the block outputs
  LayerNorm(output.dense.bias + residual), the same as with all heads masked;
* Hugging Face models: ``model.config.pruned_heads`` gets the union per layer, exactly as
  ``PreTrainedModel.prune_heads`` records it, so transformers 4.x ``save_pretrained`` /
  ``from_pretrained`` rebuild the pruned shapes (a layer emptied that way needs one more
  ``remove_heads(model, model.config.pruned_heads)`` to get its stand-in back). This is done only
  when the model's supported blocks are exactly its ``num_hidden_layers`` (no cross-attention).
  ``config.num_attention_heads`` is left unchanged: it is the original per-layer count, and
  current counts come from :func:`~methods.attention_heads.num_heads_per_layer`.

Parameters are replaced, so rebuild any optimizer afterwards. Masks from
:func:`~methods.head_masking.mask_heads` stay valid across removal.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from torch import nn

from methods.attention_heads import attention_layers, resolve_heads

__all__ = ["remove_heads", "removed_heads"]


def _record_in_config(model: nn.Module, removed: dict[int, list[int]]) -> None:
    config = getattr(model, "config", None)
    pruned = getattr(config, "pruned_heads", None)
    if not isinstance(pruned, dict) or len(attention_layers(model)) != getattr(config, "num_hidden_layers", -1):
        return
    for layer, heads in removed.items():
        pruned[layer] = sorted(set(pruned.get(layer, [])) | set(heads))


def remove_heads(model: nn.Module, heads: Mapping[int, Iterable[int]]) -> dict[int, list[int]]:
    """Remove ``heads`` (``{layer: ORIGINAL head indices}``) in place; return those newly removed.

    Heads removed by an earlier call (or by transformers' ``prune_heads``) are skipped, so
    successive calls compose like one call with the union. Everything is validated before any
    weight changes; invalid layers/heads, unsupported models or blocks raise ValueError.
    """
    plan = resolve_heads(model, heads)
    for layer, (adapter, chosen) in plan.items():
        reason = adapter.removal_blocker() if chosen - adapter.removed_heads else None
        if reason:
            raise ValueError(f"layer {layer} ({type(adapter.module).__name__}): cannot remove heads: {reason}")
    removed = {layer: adapter.remove(chosen) for layer, (adapter, chosen) in plan.items()}
    removed = {layer: heads for layer, heads in removed.items() if heads}
    _record_in_config(model, removed)
    return removed


def removed_heads(model: nn.Module) -> dict[int, list[int]]:
    """``{layer: sorted original indices}`` of all heads removed so far (layers with none omitted)."""
    return {layer: sorted(a.removed_heads) for layer, a in attention_layers(model) if a.removed_heads}

"""Record the per-head query/key/value projections of a model's attention blocks during a forward,
and derive from them the attention scores and probabilities every consumer of attention reads.

Why attention maps are recomputed from Q and K instead of read from ``output_attentions=True``:
Hugging Face returns the probabilities *after* attention dropout, so in ``train()`` mode they are
dropped-out maps (entries zeroed, the rest scaled by 1/(1-p)): a student identical to its teacher
then has a large alignment loss (MiniLM attention KL ≈ 2.5 instead of 0) and an entropy score far
from its eval-mode value. ``softmax(QKᵀ/√d + mask)`` from the captured projections is the map
*before* attention dropout, from the same forward the task loss uses, so the student's dropout
regularisation is untouched and no second forward is needed. This is also what the official
TinyBERT code reads (its self-attention returns the pre-softmax, pre-dropout scores). Dropout on
hidden states (embeddings, earlier layers) still shapes Q and K in training mode, as it does in
those codes: only attention dropout is kept out of the maps. One more benefit: any attention
implementation works (sdpa included), and the pre-softmax scores TinyBERT's loss needs come free.

Supported: absolute position embeddings (BERT/RoBERTa defaults); relative-position variants add a
term to QKᵀ that the projections do not carry, so :func:`capture_qkv` refuses them.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterable, Iterator

import torch
from torch import nn

from methods.attention_heads import HeadAdapter, NoHeadsSelfAttention, attention_layers

__all__ = ["QKVCapture", "capture_qkv", "attention_scores", "attention_probs", "layer_probs"]


class QKVCapture(dict):
    """``{layer: {"q": (B, H, T, d), "k": (B, H, S, d), "v": (B, H, S, d)}}`` of the latest forward.

    ``H`` is the layer's current head count (fewer after head removal), ``d`` its head width,
    ``T`` the query length, ``S`` the key length (``S == T`` for self-attention). Tensors are not
    detached, so a student's captured projections carry gradients.
    """


def _projections(adapter: HeadAdapter) -> dict[str, nn.Linear] | None:
    """Q/K/V linears of a BERT-style block, or None when it has none (all heads removed)."""
    sa = getattr(adapter.module, "self", None)
    position = getattr(sa, "position_embedding_type", "absolute")
    if position != "absolute":
        raise ValueError(f"{type(sa).__name__} uses {position!r} position embeddings: attention maps derived from "
                         "captured Q/K would miss the relative-position term (only 'absolute' is supported)")
    if not all(isinstance(getattr(sa, n, None), nn.Linear) for n in ("query", "key", "value")):
        return None
    return {"q": sa.query, "k": sa.key, "v": sa.value}


@contextlib.contextmanager
def capture_qkv(model: nn.Module, layers: Iterable[int] | None = None) -> Iterator[QKVCapture]:
    """Hook the Q/K/V projections of ``layers`` (all supported layers when None); yield a :class:`QKVCapture`.

    Each forward inside the ``with`` block overwrites the entries of the layers it runs; the
    hooks are removed on exit (also on error) and the captured tensors stay in the dict. Layer
    indices are those of :func:`methods.attention_heads.attention_layers`. Supported: BERT/RoBERTa
    blocks (separate ``query``/``key``/``value`` linears); a layer whose heads were all removed has
    no projections and never appears in the dict. With a KV cache only the current step's keys
    and values are recorded (the cached ones are not).
    """
    found = dict(attention_layers(model))
    chosen = sorted(found) if layers is None else list(layers)
    unknown = [i for i in chosen if i not in found]
    if unknown:
        raise ValueError(f"unknown attention layer(s) {unknown}: "
                         f"{type(model).__name__} has layers 0..{len(found) - 1}")
    captured, handles = QKVCapture(), []

    def hook_for(layer: int, adapter: HeadAdapter, name: str):
        def hook(_module, _inputs, output: torch.Tensor) -> None:
            heads = output.unflatten(-1, (adapter.num_heads, adapter.head_dim))
            captured.setdefault(layer, {})[name] = heads.transpose(-3, -2)
        return hook

    try:
        for layer in chosen:
            adapter = found[layer]
            projections = _projections(adapter)
            if projections is None and not isinstance(getattr(adapter.module, "self", None), NoHeadsSelfAttention):
                raise ValueError(f"layer {layer} ({type(adapter.module).__name__}) has no query/key/value linears")
            for name, linear in (projections or {}).items():
                handles.append(linear.register_forward_hook(hook_for(layer, adapter, name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def attention_scores(layer: dict[str, torch.Tensor]) -> torch.Tensor:
    """QKᵀ/√d of one captured layer: (B, H, T, S) pre-softmax scores in float32, no mask applied."""
    q, k = layer["q"].float(), layer["k"].float()
    return q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])


def _key_mask(mask: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, S) boolean: true for real keys; ``mask`` is (B, S), true/1 for real tokens."""
    if mask.shape != (scores.shape[0], scores.shape[-1]):
        raise ValueError(f"mask {tuple(mask.shape)} must be (batch, keys) = {(scores.shape[0], scores.shape[-1])}")
    return mask.bool()[:, None, None, :]


def attention_probs(layer: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(QKᵀ/√d + mask) of one captured layer: (B, H, T, S) probabilities *before* attention dropout
    (the module docstring says why); padded keys (``mask`` (B, S) false) get probability 0."""
    scores = attention_scores(layer)
    if mask is not None:
        scores = scores.masked_fill(~_key_mask(mask, scores), torch.finfo(scores.dtype).min)
    return scores.softmax(-1)


def layer_probs(captured: QKVCapture, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
    """:func:`attention_probs` of every captured layer, in layer order (a list like ``outputs.attentions``)."""
    return [attention_probs(captured[layer], mask) for layer in sorted(captured)]

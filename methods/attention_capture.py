"""Record the per-head query/key/value projections of a model's attention blocks during a forward.

Attention *probabilities* are not captured here: for Hugging Face BERT/RoBERTa pass
``output_attentions=True`` to the forward with eager attention (``config._attn_implementation =
"eager"``; sdpa does not return them) and read ``outputs.attentions`` (one (B, H, T, T) tensor per
layer). This module only hooks the Q/K/V ``nn.Linear`` projections, so it works with any attention
implementation.
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import torch
from torch import nn

from methods.attention_heads import HeadAdapter, NoHeadsSelfAttention, attention_layers

__all__ = ["QKVCapture", "capture_qkv"]


class QKVCapture(dict):
    """``{layer: {"q": (B, H, T, d), "k": (B, H, S, d), "v": (B, H, S, d)}}`` of the latest forward.

    ``H`` is the layer's current head count (fewer after head removal), ``d`` its head width,
    ``T`` the query length, ``S`` the key length (``S == T`` for self-attention). Tensors are not
    detached, so a student's captured projections carry gradients.
    """


def _projections(adapter: HeadAdapter) -> dict[str, nn.Linear] | None:
    """Q/K/V linears of a BERT-style block, or None when it has none (all heads removed)."""
    sa = getattr(adapter.module, "self", None)
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

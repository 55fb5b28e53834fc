"""Attention-alignment losses between a student and a teacher encoder, chosen by name.

One place maps a loss name to the methods that compute it and to what it needs from the two
forwards, so the pruning replication (alignment term inside L_distill) and the attention-distillation
replication (the distillation phase) use the same definitions:

- ``attention_mse``: TinyBERT's attention-map MSE (``methods.tinybert``), averaged over the paired
  layers ``layer_map``;
- ``minilm``: MiniLM's attention-distribution KL + value-relation KL on the *last* pair of
  ``layer_map`` (``methods.minilm``); ``minilm_no_vr``: the attention term alone (MiniLM Table 5);
- ``minilmv2``: MiniLMv2's Q-Q, K-K, V-V relation KL with ``relation_heads`` relation heads on the last
  pair (``methods.minilmv2``), so head counts may differ.

``kept`` ({student layer: original head indices kept}) restricts the per-head losses to heads a
pruned student still has (student and teacher heads pair by index); MiniLMv2 relations use all heads
of the layer, because relation heads re-split the concatenated width.
"""
from __future__ import annotations

from typing import Literal

import torch

from methods.minilm import minilm_loss
from methods.minilmv2 import minilmv2_loss
from methods.tinybert import attention_mse_loss

AlignLoss = Literal["attention_mse", "minilm", "minilm_no_vr", "minilmv2"]
ALIGN_LOSSES: tuple[str, ...] = ("attention_mse", "minilm", "minilm_no_vr", "minilmv2")


def needs_attentions(kind: str) -> bool:
    return kind in ("attention_mse", "minilm", "minilm_no_vr")


def qkv_layers(kind: str, layer_map: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(student layers, teacher layers) whose Q/K/V projections the loss reads (empty when none)."""
    if kind in ("minilm", "minilmv2"):
        student, teacher = layer_map[-1]
        return [student], [teacher]
    return [], []


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """TinyBERT's uniform mapping n = g(m): student layer m (0-based) -> teacher layer (m+1)·L/M − 1."""
    if not 0 < student_layers <= teacher_layers:
        raise ValueError(f"need 0 < student layers ({student_layers}) <= teacher layers ({teacher_layers})")
    return [(m, (m + 1) * teacher_layers // student_layers - 1) for m in range(student_layers)]


def _kept(kept: dict[int, list[int]] | None, layer: int, heads: int) -> list[int]:
    return list(range(heads)) if kept is None else kept.get(layer, list(range(heads)))


def alignment_loss(kind: str, layer_map: list[tuple[int, int]], mask: torch.Tensor, *,
                   student_attn=None, teacher_attn=None, student_qkv=None, teacher_qkv=None,
                   kept: dict[int, list[int]] | None = None, relation_heads: int = 12) -> torch.Tensor:
    """The ``kind`` loss (see the module docstring); attentions are per-layer (B, H, T, T) sequences,
    Q/K/V captures ``{layer: {"q", "k", "v"}}`` from :func:`methods.attention_capture.capture_qkv`."""
    if kind not in ALIGN_LOSSES:
        raise ValueError(f"unknown alignment loss {kind!r} (known: {ALIGN_LOSSES})")
    if not layer_map:
        raise ValueError("layer_map is empty")
    if kind == "attention_mse":
        losses = []
        for s_layer, t_layer in layer_map:
            s = student_attn[s_layer]
            heads = _kept(kept, s_layer, s.shape[1])
            if heads:
                losses.append(attention_mse_loss(s[:, heads], teacher_attn[t_layer][:, heads], mask))
        return torch.stack(losses).mean()
    s_layer, t_layer = layer_map[-1]
    if kind == "minilmv2":
        return minilmv2_loss(student_qkv[s_layer], teacher_qkv[t_layer], relation_heads, mask)[0]
    heads = _kept(kept, s_layer, student_attn[s_layer].shape[1])
    with_vr = kind == "minilm"
    s_v = student_qkv[s_layer]["v"][:, heads] if with_vr else None
    t_v = teacher_qkv[t_layer]["v"][:, heads] if with_vr else None
    return minilm_loss(student_attn[s_layer][:, heads], teacher_attn[t_layer][:, heads], s_v, t_v, mask,
                       value_relation=with_vr)[0]

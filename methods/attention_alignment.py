"""Attention-alignment losses between a student and a teacher encoder, chosen by name.

Each loss registers itself in the ``attention_alignment`` family of :mod:`methods.registry` (in the
module of the method it applies), so the pruning replication (alignment term inside L_distill) and
the attention-distillation replication (the distillation phase) use the same definitions:

- ``attention_mse``: TinyBERT's attention-map MSE (``methods.tinybert``), averaged over the paired
  layers ``layer_map``;
- ``minilm``: MiniLM's attention-distribution KL + value-relation KL on the *last* pair of
  ``layer_map`` (``methods.minilm``); ``minilm_no_vr``: the attention term alone (MiniLM Table 5);
- ``minilmv2``: MiniLMv2's Q-Q, K-K, V-V relation KL with ``relation_heads`` relation heads on the last
  pair (``methods.minilmv2``), so head counts may differ.

A registered loss is an object with ``needs_attentions`` (bool: whether it reads attention maps),
``qkv_layers(layer_map) -> (student layers, teacher layers)`` whose Q/K/V projections it reads, and
``loss(layer_map, mask, *, student_attn, teacher_attn, student_qkv, teacher_qkv, kept, relation_heads)``.
``kept`` ({student layer: original head indices kept}) restricts the per-head losses to heads a
pruned student still has (student and teacher heads pair by index); MiniLMv2 relations use all heads
of the layer, because relation heads re-split the concatenated width.
"""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import AfterValidator

from methods.registry import UnknownMethod, lookup, names

FAMILY = "attention_alignment"


def _known(name: str) -> str:
    try:
        lookup(FAMILY, name)
    except UnknownMethod as exc:
        raise ValueError(str(exc)) from None
    return name


AlignLoss = Annotated[str, AfterValidator(_known)]
"""A config field naming a registered alignment loss (validated on load)."""


def align_losses() -> list[str]:
    return names(FAMILY)


def needs_attentions(kind: str) -> bool:
    return lookup(FAMILY, kind).impl.needs_attentions


def qkv_layers(kind: str, layer_map: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(student layers, teacher layers) whose Q/K/V projections the loss reads (empty when none)."""
    return lookup(FAMILY, kind).impl.qkv_layers(layer_map)


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """TinyBERT's uniform mapping n = g(m): student layer m (0-based) -> teacher layer (m+1)·L/M − 1."""
    if not 0 < student_layers <= teacher_layers:
        raise ValueError(f"need 0 < student layers ({student_layers}) <= teacher layers ({teacher_layers})")
    return [(m, (m + 1) * teacher_layers // student_layers - 1) for m in range(student_layers)]


def kept_heads(kept: dict[int, list[int]] | None, layer: int, heads: int) -> list[int]:
    """The head indices of ``layer`` a (pruned) student still has: all ``heads`` when ``kept`` is None."""
    return list(range(heads)) if kept is None else kept.get(layer, list(range(heads)))


def alignment_loss(kind: str, layer_map: list[tuple[int, int]], mask: torch.Tensor, *,
                   student_attn=None, teacher_attn=None, student_qkv=None, teacher_qkv=None,
                   kept: dict[int, list[int]] | None = None, relation_heads: int = 12) -> torch.Tensor:
    """The ``kind`` loss (see the module docstring); attentions are per-layer (B, H, T, T) sequences,
    Q/K/V captures ``{layer: {"q", "k", "v"}}`` from :func:`methods.attention_capture.capture_qkv`."""
    try:
        method = lookup(FAMILY, kind)
    except UnknownMethod as exc:
        raise ValueError(str(exc)) from None
    if not layer_map:
        raise ValueError("layer_map is empty")
    return method.impl.loss(layer_map, mask, student_attn=student_attn, teacher_attn=teacher_attn,
                            student_qkv=student_qkv, teacher_qkv=teacher_qkv, kept=kept,
                            relation_heads=relation_heads)

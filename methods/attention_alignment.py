"""Attention-alignment losses between a student and a teacher encoder, chosen by name.

Each loss registers itself in the ``attention_alignment`` family of :mod:`methods.registry` (in the
module of the method it applies), so the pruning replication (alignment term inside L_distill) and
the attention-distillation replication (the distillation phase) use the same definitions:

- ``attention_mse``: TinyBERT's attention MSE (``methods.tinybert``) over the paired layers
  ``layer_map``; parameter ``form``: ``scores`` (default, TinyBERT's code: pre-softmax scores, padded
  keys zeroed, summed over layers) or ``probabilities`` (MSE of probabilities, averaged over layers);
- ``minilm``: MiniLM's attention-distribution KL + value-relation KL on the *last* pair of
  ``layer_map`` (``methods.minilm``); ``minilm_no_vr``: the attention term alone (MiniLM Table 5);
- ``minilmv2``: MiniLMv2's Q-Q, K-K, V-V relation KL with ``relation_heads`` relation heads on the last
  pair (``methods.minilmv2``), so head counts may differ.

Every loss reads the Q/K/V captures of :func:`methods.attention_capture.capture_qkv` (never
``output_attentions``, which is dropped out in training mode): attention maps are derived from them
by :func:`methods.attention_capture.attention_probs` / ``attention_scores``.

A registered loss is an object with ``qkv_layers(layer_map) -> (student layers, teacher layers)``
whose Q/K/V projections it reads, and ``loss(layer_map, mask, *, student_qkv, teacher_qkv, kept,
relation_heads, params)`` (``params``: its validated parameter schema). ``kept`` ({student layer:
original head indices kept}) restricts the per-head losses to heads a pruned (gated) student still
has (student and teacher heads pair by index); MiniLMv2 relations use all heads of the layer,
because relation heads re-split the concatenated width.
"""
from __future__ import annotations

from typing import Annotated, Any

import torch
from pydantic import AfterValidator

from methods.registry import MethodParams, UnknownMethod, lookup, names, parse_params

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


def align_params(kind: str, values: dict[str, Any] | None) -> MethodParams:
    """``values`` validated against the parameter schema of loss ``kind`` (ValueError naming the field)."""
    return parse_params(FAMILY, kind, values or {})


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
                   student_qkv, teacher_qkv, kept: dict[int, list[int]] | None = None, relation_heads: int = 12,
                   params: MethodParams | dict[str, Any] | None = None) -> torch.Tensor:
    """The ``kind`` loss (see the module docstring) from Q/K/V captures ``{layer: {"q", "k", "v"}}`` of
    :func:`methods.attention_capture.capture_qkv` holding at least the layers of :func:`qkv_layers`."""
    try:
        method = lookup(FAMILY, kind)
    except UnknownMethod as exc:
        raise ValueError(str(exc)) from None
    if not layer_map:
        raise ValueError("layer_map is empty")
    if not isinstance(params, MethodParams):
        params = align_params(kind, params)
    return method.impl.loss(layer_map, mask, student_qkv=student_qkv, teacher_qkv=teacher_qkv, kept=kept,
                            relation_heads=relation_heads, params=params)

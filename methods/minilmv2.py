"""MiniLMv2 (Wang et al., Findings of ACL 2021, arXiv 2012.15828): multi-head self-attention relations.

The queries (likewise keys, values) of all attention heads of one layer are concatenated and
re-split into R *relation heads*; the relation is softmax(X Xᵀ / √d_r) per relation head, and
the student matches the teacher's Q-Q, K-K and V-V relations with KL(teacher ‖ student), each
averaged over relation heads and valid query positions as in MiniLM Eq. 6 (see
:mod:`methods.minilm`). Because R is chosen freely, student and teacher may differ in head count
and hidden size. Equation numbers of the 2021 paper are not quoted: only its abstract and the
official README were available (shared/papers/PAPERS.md §3b).

Layer choice belongs to the caller: the paper distils one teacher layer into the student's last
layer, using an upper-middle teacher layer for large teachers and the last layer for base-size
ones (a third-party help string gives R = 48 for base and 64 for large teachers, unverified).
The paper *sums* the relation losses; :func:`minilmv2_loss` takes their *mean* (a constant 1/3
factor with all three relations).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from methods.minilm import attention_distribution_loss, value_relation
from methods.registry import register

__all__ = ["relation_heads", "self_attention_relation", "minilmv2_loss"]


def relation_heads(x: torch.Tensor, num_relation_heads: int) -> torch.Tensor:
    """(B, H, T, d) per-attention-head vectors -> (B, R, T, H·d / R) relation-head vectors.

    Heads are concatenated in order to (B, T, H·d), the layout the attention block's projection
    produces, then split into R equal chunks. Raises ValueError when R does not divide H·d.
    """
    if x.dim() != 4:
        raise ValueError(f"expected (B, H, T, d) tensor, got shape {tuple(x.shape)}")
    batch, heads, length, dim = x.shape
    if num_relation_heads <= 0 or (heads * dim) % num_relation_heads:
        raise ValueError(f"{num_relation_heads} relation heads do not divide the concatenated width "
                         f"{heads}·{dim} = {heads * dim}")
    joined = x.transpose(1, 2).reshape(batch, length, heads * dim)
    return joined.unflatten(-1, (num_relation_heads, -1)).transpose(1, 2)


def self_attention_relation(x: torch.Tensor, num_relation_heads: int,
                            mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(X_r X_rᵀ / √d_r) per relation head r: (B, H, T, d) -> (B, R, T, T); padded keys get 0."""
    return value_relation(relation_heads(x, num_relation_heads), mask)


def minilmv2_loss(student_qkv: Mapping[str, torch.Tensor], teacher_qkv: Mapping[str, torch.Tensor],
                  num_relation_heads: int, mask: torch.Tensor | None = None,
                  relations: Sequence[str] = ("q", "k", "v")) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean over ``relations`` of KL(R^T ‖ R^S); returns ``(total, {"qq": ..., "kk": ..., "vv": ...})``.

    ``student_qkv``/``teacher_qkv``: ``{"q", "k", "v"}`` -> (B, H, T, d) tensors (one layer of
    :func:`methods.attention_capture.capture_qkv`); H and d may differ between student and teacher
    provided R divides both H·d. ``mask`` (B, T) marks real tokens. The teacher is detached.
    """
    if not relations or len(set(relations)) != len(relations) or not set(relations) <= {"q", "k", "v"}:
        raise ValueError(f"relations must be distinct names among 'q', 'k', 'v', got {tuple(relations)}")
    parts = {}
    for name in relations:
        student = self_attention_relation(student_qkv[name], num_relation_heads, mask)
        teacher = self_attention_relation(teacher_qkv[name].detach(), num_relation_heads, mask)
        parts[name * 2] = attention_distribution_loss(student, teacher, mask)
    return sum(parts.values()) / len(parts), parts


@register("attention_alignment", "minilmv2")
class MiniLMv2Alignment:
    """:func:`minilmv2_loss` on the last layer pair with ``relation_heads`` relation heads (all heads of
    the layer: relation heads re-split the concatenated width)."""

    @staticmethod
    def qkv_layers(layer_map):
        student, teacher = layer_map[-1]
        return [student], [teacher]

    @staticmethod
    def loss(layer_map, mask, *, student_qkv, teacher_qkv, relation_heads: int = 12, **unused) -> torch.Tensor:
        s_layer, t_layer = layer_map[-1]
        return minilmv2_loss(student_qkv[s_layer], teacher_qkv[t_layer], relation_heads, mask)[0]

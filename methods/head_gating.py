"""Per-input head gating at inference: each input skips its own least important heads, layer by layer.

Our third reading of arXiv 2511.17577's "dynamic, real-time" pruning (the first two, one-shot and
progressive, prune at training time). In every gated layer, for every input b of the batch:

1. the Q and K projections, QKᵀ/√d + mask and the softmax run for **every** head (always paid: the
   score needs the attention probabilities);
2. the score ``S_b = α·norm(w) + (1−α)·norm(sign·H_b)`` of :func:`methods.head_importance.combined_score`
   per head, with w the (static) weight norm of the head and H_b the mean entropy of its attention
   rows over b's real query tokens; ``norm`` is taken over the layer's heads for that input;
3. the ``skip[layer]`` heads of lowest score are skipped (ties: the lower head index is kept): their
   V projection rows, probabilities × V and O projection columns are not used.

The decision is per layer because a layer's input depends on the gated layers before it: a global
ranking over layers would need a second forward. ``mode="mask"`` computes every head and zeroes the
skipped heads' context (no saving; the cost of the decision alone); ``mode="gather"`` computes only
the kept heads: at batch 1 by slicing the weights, at batch > 1 by gathering each input's kept V rows
and O columns into per-input weights applied with a batched matmul. A layer with ``skip == 0`` runs
the eager BERT attention unchanged (same operations, so the outputs are bitwise those of the model).

Supported: transformers BERT/RoBERTa attention blocks (``BertAttentionAdapter``), absolute
positions, self-attention without KV cache; heads removed before (``methods.head_removal``) are
handled (the score ranks the remaining heads; recorded indices are original ones).
"""
from __future__ import annotations

import math
from typing import Literal, Mapping

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from methods.attention_heads import BertAttentionAdapter, _head_index, attention_layers
from methods.head_importance import combined_score, weight_norms
from methods.registry import MethodParams

__all__ = ["GatingParams", "PerInputHeadGating", "choose_kept", "input_entropy"]


class GatingParams(MethodParams):
    """The per-input score (see :func:`methods.head_importance.combined_score`) and how it is executed."""

    alpha: float = Field(0.5, ge=0, le=1, description="weight of the weight norm; 1 - alpha on the entropy")
    norm_p: float = Field(2.0, gt=0)
    entropy_sign: Literal[-1, 1] = -1
    normalize: Literal["minmax", "l2", "mean", "none"] = "minmax"


def input_entropy(probs: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """(B, H) mean Shannon entropy (nats) of each head's attention rows over each input's real query tokens.
    ``probs``: (B, H, T, S); ``real``: (B, T) true for real tokens, or None."""
    p = probs.float()
    ent = -(p * p.clamp_min(1e-12).log()).sum(-1)  # (B, H, T)
    if real is None:
        return ent.mean(-1)
    m = real[:, None, :].to(ent.dtype)
    return (ent * m).sum(-1) / m.sum(-1).clamp_min(1.0)


def choose_kept(scores: torch.Tensor, skip: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, skipped) head positions per row of ``scores`` (B, H), each sorted ascending; the ``skip``
    lowest scores are skipped, ties keep the lower position."""
    if not 0 <= skip < scores.shape[1]:
        raise ValueError(f"cannot skip {skip} of {scores.shape[1]} heads (at least one head is kept)")
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    keep = scores.shape[1] - skip
    return order[:, :keep].sort(dim=1).values, order[:, keep:].sort(dim=1).values


class PerInputHeadGating:
    """Gate every attention block of ``model``; ``skip``: {layer: heads skipped per input} (others: 0).

    ``last_skipped[layer]`` holds the latest forward's (B, skip) original head indices; with
    ``record=True`` every forward's are also appended to ``history[layer]``. ``remove()`` (or leaving
    the ``with`` block) restores the blocks' own forward.
    """

    def __init__(self, model: nn.Module, skip: Mapping[int, int], params: GatingParams = GatingParams(),
                 mode: Literal["mask", "gather"] = "gather", record: bool = False):
        if mode not in ("mask", "gather"):
            raise ValueError(f"unknown gating mode {mode!r} (expected mask or gather)")
        layers = dict(attention_layers(model))
        if not layers:
            raise ValueError(f"{type(model).__name__} has no supported attention layer to gate")
        unknown = sorted(set(skip) - set(layers))
        if unknown:
            raise ValueError(f"unknown attention layer(s) {unknown}: {type(model).__name__} has 0..{len(layers) - 1}")
        norms = weight_norms(model, params.norm_p)
        self.params, self.mode, self.record = params, mode, record
        self.last_skipped: dict[int, torch.Tensor] = {}
        self.history: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
        self._patched: list[nn.Module] = []
        for layer, adapter in layers.items():
            if not isinstance(adapter, BertAttentionAdapter):
                raise ValueError(f"layer {layer}: per-input gating supports BERT-style blocks, not {type(adapter.module).__name__}")
            count = int(skip.get(layer, 0))
            if not 0 <= count < adapter.num_heads:
                raise ValueError(f"layer {layer}: cannot skip {count} of its {adapter.num_heads} heads per input "
                                 "(at least one head is kept)")
            if getattr(adapter.module.self, "position_embedding_type", "absolute") != "absolute":
                raise ValueError(f"layer {layer}: only absolute position embeddings are supported")
            kept = torch.tensor(adapter.kept_heads(), dtype=torch.long)
            w = norms[layer].index_select(0, kept)
            adapter.module.forward = self._forward_for(layer, adapter, w, kept, count)
            self._patched.append(adapter.module)

    def _forward_for(self, layer: int, adapter: BertAttentionAdapter, w: torch.Tensor, kept: torch.Tensor, skip: int):
        def forward(hidden_states, attention_mask=None, head_mask=None, encoder_hidden_states=None,
                    past_key_values=None, output_attentions=False, cache_position=None, **kwargs):
            if encoder_hidden_states is not None or past_key_values is not None or head_mask is not None:
                raise ValueError("per-input gating supports self-attention without KV cache or head_mask")
            return self._attend(layer, adapter, w, kept, skip, hidden_states, attention_mask)
        return forward

    def _attend(self, layer, adapter, w, kept, skip, x, attention_mask):
        block, sa = adapter.module, adapter.module.self
        b, t, _ = x.shape
        h, d = sa.num_attention_heads, sa.attention_head_size
        q = sa.query(x).view(b, -1, h, d).transpose(1, 2)
        k = sa.key(x).view(b, -1, h, d).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)  # the eager BERT operations, in order
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = F.softmax(scores, dim=-1)
        if skip == 0:
            v = sa.value(x).view(b, -1, h, d).transpose(1, 2)
            context = torch.matmul(sa.dropout(probs), v).permute(0, 2, 1, 3).contiguous().view(b, t, h * d)
            return block.output(context, x), probs
        real = None
        if attention_mask is not None:  # additive (B, 1, T|1, S) mask: 0 for real keys; encoder: keys == queries
            real = attention_mask[:, 0, 0, :] > torch.finfo(attention_mask.dtype).min / 2
        entropy = input_entropy(probs, real)
        score = combined_score(w.to(entropy.device).expand(b, h), entropy, self.params.alpha,
                               self.params.entropy_sign, self.params.normalize)
        keep, skipped = choose_kept(score, skip)
        self.last_skipped[layer] = kept.to(skipped.device)[skipped]
        if self.record:
            self.history[layer].append(self.last_skipped[layer].cpu())
        out = block.output
        if self.mode == "mask":
            v = sa.value(x).view(b, -1, h, d).transpose(1, 2)
            gate = torch.ones(b, h, dtype=probs.dtype, device=probs.device).scatter_(1, skipped, 0.0)
            context = torch.matmul(sa.dropout(probs), v) * gate[:, :, None, None]
            hidden = out.dense(context.permute(0, 2, 1, 3).contiguous().view(b, t, h * d))
        elif b == 1:  # one input: slice the kept heads out of the weights
            index = _head_index(keep[0].tolist(), d, x.device)
            v = F.linear(x, sa.value.weight.index_select(0, index), sa.value.bias.index_select(0, index))
            v = v.view(1, -1, keep.shape[1], d).transpose(1, 2)
            context = torch.matmul(sa.dropout(probs.index_select(1, keep[0])), v)
            hidden = F.linear(context.permute(0, 2, 1, 3).reshape(1, t, -1),
                              out.dense.weight.index_select(1, index), out.dense.bias)
        else:  # inputs keep different heads: per-input weights, batched matmuls
            n = keep.shape[1]
            wv = sa.value.weight.view(h, d, -1)[keep].reshape(b, n * d, -1)  # (B, n·d, hidden)
            bv = sa.value.bias.view(h, d)[keep].reshape(b, 1, n * d)
            v = (torch.bmm(x, wv.transpose(1, 2)) + bv).view(b, -1, n, d).transpose(1, 2)
            p = probs.gather(1, keep[:, :, None, None].expand(b, n, *probs.shape[2:]))
            context = torch.matmul(sa.dropout(p), v).permute(0, 2, 1, 3).reshape(b, t, n * d)
            wo = out.dense.weight.view(-1, h, d).permute(1, 2, 0)[keep].reshape(b, n * d, -1)  # (B, n·d, hidden)
            hidden = torch.bmm(context, wo) + out.dense.bias
        return out.LayerNorm(out.dropout(hidden) + x), probs

    def remove(self) -> None:
        for module in self._patched:
            del module.forward
        self._patched = []

    def __enter__(self) -> "PerInputHeadGating":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

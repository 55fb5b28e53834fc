"""Head-importance scores and the choice of heads to prune from them.

The score of arXiv 2511.17577: ``S = α·w + (1−α)·H`` per head, with w a weight norm of the head's
Q/K/V/O slices and H its attention entropy, each normalised within its layer. The paper leaves the
norm, the normalisation and the sign of the entropy open; here they are arguments:

- ``weight_norms(model, p)``: the p-norm of the concatenated Q, K, V output rows and O input
  columns of each head (p=2: Frobenius). Heads already removed are NaN.
- ``attention_entropy(attentions, mask)``: mean over real query tokens of the Shannon entropy (nats)
  of each head's attention row, as a (layers, heads) tensor.
- ``combined_score(w, H, alpha, entropy_sign, normalize)``: ``entropy_sign=-1`` (default) makes a
  *focused* head (low entropy) important and a diffuse one (attention close to uniform, high entropy)
  prunable, following Voita et al. (2019): the heads that matter are positional/syntactic heads
  with peaked attention. ``normalize="minmax"`` maps each layer's w and H to [0, 1] (the layer's
  least and most important head), so α weighs two quantities on the same scale.
- Michel et al.'s gradient importance is the absolute gate gradient, see ``methods.head_gates``;
  ``normalize_per_layer(..., "l2")`` is their per-layer normalisation.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from methods.attention_heads import _head_index, attention_layers
from methods.registry import MethodParams, NoParams, register

__all__ = ["weight_norms", "attention_entropy", "normalize_per_layer", "combined_score", "lowest_heads",
           "CombinedScore", "EntropyScore", "MichelScore", "RandomOrder", "WeightNormScore"]


def weight_norms(model: nn.Module, p: float = 2.0) -> torch.Tensor:
    """(layers, original heads) p-norm of each head's Q/K/V rows and O columns (removed heads: NaN)."""
    layers = attention_layers(model)
    heads = max(a.original_num_heads for _, a in layers)
    out = torch.full((len(layers), heads), float("nan"))
    for layer, adapter in layers:
        sa = getattr(adapter.module, "self", None)
        if not adapter.kept_heads():
            continue  # every head removed: the row stays NaN
        if sa is None or not hasattr(sa, "query"):
            raise ValueError(f"layer {layer}: weight norms need a BERT-style block with self.query/key/value")
        for pos, head in enumerate(adapter.kept_heads()):
            index = _head_index([pos], adapter.head_dim, adapter.output_projection.weight.device)
            parts = [lin.weight.detach().index_select(0, index).flatten() for lin in (sa.query, sa.key, sa.value)]
            parts.append(adapter.output_projection.weight.detach().index_select(1, index).flatten())
            out[layer, head] = torch.linalg.vector_norm(torch.cat(parts).float(), ord=p)
    return out


def attention_entropy(attentions: list[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
    """(layers, heads) mean entropy of the attention rows of real query tokens.

    ``attentions``: per layer (batch, heads, query, key) probabilities (all layers the same head
    count; use it on an unpruned or masked model), taken before attention dropout
    (:func:`methods.attention_capture.layer_probs`; ``output_attentions`` are dropped out in training
    mode). ``mask``: (batch, query) 1 for real tokens.
    """
    rows = []
    for probs in attentions:
        ent = -(probs.float() * probs.float().clamp_min(1e-12).log()).sum(-1)  # (B, H, Q)
        if mask is None:
            rows.append(ent.mean(dim=(0, 2)))
        else:
            m = mask[:, None, :].to(ent.dtype)
            rows.append((ent * m).sum(dim=(0, 2)) / m.sum(dim=(0, 2)).clamp_min(1.0))
    return torch.stack(rows).detach()


def normalize_per_layer(scores: torch.Tensor, method: str = "minmax") -> torch.Tensor:
    """Normalise each row (layer): ``minmax`` to [0, 1] (a constant row -> 0.5), ``l2`` to unit L2 norm
    (Michel et al.), ``mean`` to mean 1, or ``none``. NaN entries (removed heads) are ignored."""
    s = scores.float()
    valid = ~torch.isnan(s)
    filled = torch.where(valid, s, torch.zeros_like(s))
    if method == "none":
        return s
    if method == "minmax":
        lo = torch.where(valid, s, torch.full_like(s, math.inf)).min(dim=1, keepdim=True).values
        hi = torch.where(valid, s, torch.full_like(s, -math.inf)).max(dim=1, keepdim=True).values
        span = hi - lo
        out = torch.where(span > 0, (s - lo) / span.clamp_min(1e-12), torch.full_like(s, 0.5))
    elif method == "l2":
        out = s / filled.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
    elif method == "mean":
        count = valid.sum(dim=1, keepdim=True).clamp_min(1)
        out = s / (filled.sum(dim=1, keepdim=True) / count).clamp_min(1e-12)
    else:
        raise ValueError(f"unknown normalisation {method!r} (expected minmax, l2, mean or none)")
    return torch.where(valid, out, s)


def combined_score(w: torch.Tensor, entropy: torch.Tensor, alpha: float, entropy_sign: int = -1,
                   normalize: str = "minmax") -> torch.Tensor:
    """``α·norm(w) + (1−α)·norm(sign·H)`` per head; higher = more important."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if entropy_sign not in (-1, 1):
        raise ValueError(f"entropy_sign must be -1 or +1, got {entropy_sign}")
    if w.shape != entropy.shape:
        raise ValueError(f"weight-norm scores {tuple(w.shape)} and entropies {tuple(entropy.shape)} differ in shape")
    return alpha * normalize_per_layer(w, normalize) + (1 - alpha) * normalize_per_layer(entropy_sign * entropy, normalize)


def lowest_heads(scores: torch.Tensor, count: int, exclude: set[tuple[int, int]] = frozenset(),
                 min_per_layer: int = 0) -> list[tuple[int, int]]:
    """The ``count`` (layer, head) pairs of lowest score (global ranking, ties by position), skipping
    ``exclude`` and NaN entries and keeping at least ``min_per_layer`` heads in every layer."""
    layers, heads = scores.shape
    alive = [sum(1 for h in range(heads) if not math.isnan(scores[l, h]) and (l, h) not in exclude)
             for l in range(layers)]
    order = sorted(((float(scores[l, h]), l, h) for l in range(layers) for h in range(heads)
                    if not math.isnan(scores[l, h]) and (l, h) not in exclude))
    chosen = []
    for _, l, h in order:
        if len(chosen) == count:
            break
        if alive[l] > min_per_layer:
            chosen.append((l, h))
            alive[l] -= 1
    if len(chosen) < count:
        raise ValueError(f"cannot choose {count} heads: only {len(chosen)} are prunable "
                         f"with min_per_layer={min_per_layer}")
    return chosen


# ---------------------------------------------------------------- scores by name (methods.registry)
# A ``head_importance`` score provides ``needs_attentions`` (reads attention entropy),
# ``needs_gate_grad`` (reads |dL/dgate|, methods.head_gates), ``random_order`` (ranks heads by a
# seeded random order instead of a score) and ``score(params, encoder, entropy, gate_grad)``:
# (layers, heads), higher = keep, or None when it has no score.
Normalize = Literal["minmax", "l2", "mean", "none"]


class CombinedParams(MethodParams):
    alpha: float = Field(0.5, ge=0, le=1)
    norm_p: float = Field(2.0, gt=0)
    entropy_sign: Literal[-1, 1] = -1
    normalize: Normalize = "minmax"


class WeightNormParams(MethodParams):
    norm_p: float = Field(2.0, gt=0)
    normalize: Normalize = "minmax"


class EntropyParams(MethodParams):
    entropy_sign: Literal[-1, 1] = -1
    normalize: Normalize = "minmax"


class _Score:
    needs_attentions = False
    needs_gate_grad = False
    random_order = False


@register("head_importance", "combined", CombinedParams)
class CombinedScore(_Score):
    """S = α·w + (1−α)·H of arXiv 2511.17577 (:func:`combined_score`)."""

    needs_attentions = True

    @staticmethod
    def score(params: CombinedParams, encoder, entropy, gate_grad):
        return combined_score(weight_norms(encoder, params.norm_p), entropy, params.alpha, params.entropy_sign,
                              params.normalize)


@register("head_importance", "weight_norm", WeightNormParams)
class WeightNormScore(_Score):
    """The weight-norm term alone (α = 1)."""

    @staticmethod
    def score(params: WeightNormParams, encoder, entropy, gate_grad):
        return normalize_per_layer(weight_norms(encoder, params.norm_p), params.normalize)


@register("head_importance", "entropy", EntropyParams)
class EntropyScore(_Score):
    """The attention-entropy term alone (α = 0)."""

    needs_attentions = True

    @staticmethod
    def score(params: EntropyParams, encoder, entropy, gate_grad):
        return normalize_per_layer(params.entropy_sign * entropy, params.normalize)


@register("head_importance", "michel", NoParams)
class MichelScore(_Score):
    """Michel et al.: |∂L/∂gate| per head, L2-normalised within each layer."""

    needs_gate_grad = True

    @staticmethod
    def score(params: NoParams, encoder, entropy, gate_grad):
        return normalize_per_layer(gate_grad, "l2")


@register("head_importance", "random", NoParams)
class RandomOrder(_Score):
    """The control: heads in a seeded random order, no score."""

    random_order = True

    @staticmethod
    def score(params: NoParams, encoder, entropy, gate_grad):
        return None

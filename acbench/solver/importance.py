"""Which head-importance score a pruning run uses, and computing it from one batch or many."""
from __future__ import annotations

import random
from typing import Literal

import torch
from pydantic import Field

from acbench.config import Strict
from acbench.solver.losses import task_loss
from methods.head_gates import HeadGates
from methods.head_importance import attention_entropy, combined_score, normalize_per_layer, weight_norms


class ImportanceSettings(Strict):
    """``combined``: S = α·w + (1−α)·H of arXiv 2511.17577; the controls are ``weight_norm`` (α = 1),
    ``entropy`` (α = 0), ``random`` (a seeded random order) and ``michel`` (|∂L/∂gate|, Michel et al.)."""

    kind: Literal["combined", "weight_norm", "entropy", "random", "michel"] = "combined"
    alpha: float = Field(0.5, ge=0, le=1)
    norm_p: float = Field(2.0, gt=0)
    entropy_sign: Literal[-1, 1] = -1
    normalize: Literal["minmax", "l2", "mean", "none"] = "minmax"
    min_heads_per_layer: int = Field(1, ge=0)

    @property
    def needs_attentions(self) -> bool:
        return self.kind in ("combined", "entropy")


def scores(settings: ImportanceSettings, encoder, entropy: torch.Tensor | None,
           gate_grad: torch.Tensor | None) -> torch.Tensor | None:
    """(layers, heads) importance, higher = keep; None for ``random`` (no score)."""
    kind = settings.kind
    if kind == "combined":
        return combined_score(weight_norms(encoder, settings.norm_p), entropy, settings.alpha,
                              settings.entropy_sign, settings.normalize)
    if kind == "weight_norm":
        return normalize_per_layer(weight_norms(encoder, settings.norm_p), settings.normalize)
    if kind == "entropy":
        return normalize_per_layer(settings.entropy_sign * entropy, settings.normalize)
    if kind == "michel":
        return normalize_per_layer(gate_grad, "l2")
    return None


def random_order(num_layers: int, num_heads: int, seed: int) -> list[tuple[int, int]]:
    order = [(layer, head) for layer in range(num_layers) for head in range(num_heads)]
    random.Random(seed).shuffle(order)
    return order


def static_scores(settings: ImportanceSettings, model, batches: list[dict]) -> torch.Tensor | None:
    """Importance of ``model``'s encoder heads averaged over ``batches`` (model unchanged, eval mode)."""
    if settings.kind == "random":
        return None
    model.eval()
    gates = HeadGates(model.encoder, requires_grad=settings.kind == "michel")
    entropy, grad = None, None
    try:
        for batch in batches:
            if settings.kind == "michel":
                task_loss(model(batch).logits, batch["labels"]).backward()
                g = gates.take_grad()
                grad = g if grad is None else grad + g
            elif settings.needs_attentions:
                with torch.no_grad():
                    ent = attention_entropy(list(model(batch, output_attentions=True).attentions),
                                            batch["attention_mask"])
                entropy = ent if entropy is None else entropy + ent
    finally:
        gates.remove()
        model.zero_grad(set_to_none=True)
    if entropy is not None:
        entropy = entropy / len(batches)
    return scores(settings, model.encoder, entropy, grad)

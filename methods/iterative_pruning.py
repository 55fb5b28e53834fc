"""Iterative head pruning by fixed steps (Michel et al., 2019, §4.2 / Figure 3).

Starting from the full model, each step re-scores the heads still present on the *current* (already
pruned) model and prunes the ``step`` lowest-scoring ones (a global ranking across layers), until
``steps`` steps are done. The caller owns the model: ``score(pruned)`` returns a (layers, heads)
tensor, higher = more important, computed with the heads in ``pruned`` already masked or removed
(their entries are ignored); ``apply(pruned)`` masks or removes them; ``measure(fraction, pruned)``
records whatever the curve plots (e.g. accuracy) at 0 and after every step.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from methods.head_importance import lowest_heads

__all__ = ["iterative_pruning", "as_plan"]


def as_plan(pruned: set[tuple[int, int]]) -> dict[int, list[int]]:
    """{layer: sorted heads} of a set of (layer, head) pairs."""
    plan: dict[int, list[int]] = {}
    for layer, head in sorted(pruned):
        plan.setdefault(layer, []).append(head)
    return plan


def iterative_pruning(num_layers: int, num_heads: int, step: int, steps: int,
                      score: Callable[[set[tuple[int, int]]], torch.Tensor],
                      apply: Callable[[set[tuple[int, int]]], None],
                      measure: Callable[[float, set[tuple[int, int]]], Any],
                      min_per_layer: int = 1) -> list[tuple[float, Any]]:
    """``[(fraction pruned, measure(...))]`` at 0, step, 2·step, … heads pruned (``steps`` + 1 points)."""
    total = num_layers * num_heads
    if step < 1 or steps < 0:
        raise ValueError(f"need step >= 1 and steps >= 0, got step={step}, steps={steps}")
    if step * steps > total - min_per_layer * num_layers:
        raise ValueError(f"{steps} steps of {step} heads exceed the {total - min_per_layer * num_layers} prunable "
                         f"heads (keeping {min_per_layer} per layer)")
    pruned: set[tuple[int, int]] = set()
    curve = [(0.0, measure(0.0, set(pruned)))]
    for _ in range(steps):
        scores = score(set(pruned)).detach().float().clone()
        if scores.shape != (num_layers, num_heads):
            raise ValueError(f"score returned shape {tuple(scores.shape)}, expected {(num_layers, num_heads)}")
        for layer, head in pruned:
            scores[layer, head] = float("nan")
        pruned |= set(lowest_heads(scores, step, min_per_layer=min_per_layer))
        apply(set(pruned))
        curve.append((len(pruned) / total, measure(len(pruned) / total, set(pruned))))
    return curve

"""Dynamic head pruning during fine-tuning (our reading of arXiv 2511.17577's "real-time" pruning).

Every training step the caller passes this step's per-head importance (layers, heads); the pruner
keeps an exponential moving average (``ema`` weight on the past), so the ranking follows the
current weights and batches. Heads are masked progressively: the number masked grows linearly
from 0 at step ``start`` to the target at step ``end`` and never shrinks, and at each increase the
unmasked heads with the lowest average score are added. After ``end`` the mask is fixed; the
caller then removes the masked heads for real (``methods.head_removal``).
Under DDP call :meth:`update` with scores already averaged over ranks, so all ranks agree.
"""
from __future__ import annotations

import math

import torch

from methods.head_importance import lowest_heads

__all__ = ["DynamicHeadPruner"]


class DynamicHeadPruner:
    def __init__(self, num_layers: int, num_heads: int, target: int, start: int, end: int,
                 ema: float = 0.9, min_per_layer: int = 1, order: list[tuple[int, int]] | None = None):
        """``target`` heads masked by step ``end``. ``order``: a fixed pruning order (e.g. random
        heads), which replaces the scores."""
        if not 0 <= target <= num_layers * num_heads:
            raise ValueError(f"target {target} outside [0, {num_layers * num_heads}]")
        if not 0 <= start <= end:
            raise ValueError(f"need 0 <= start <= end, got start={start}, end={end}")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        self.target, self.start, self.end, self.ema = target, start, end, ema
        self.min_per_layer, self.order = min_per_layer, order
        self.average = torch.zeros(num_layers, num_heads)
        self.updates = 0
        self.masked: list[tuple[int, int]] = []

    def update(self, scores: torch.Tensor) -> None:
        """Fold one step's scores (layers, heads; higher = more important) into the average."""
        scores = scores.detach().float().cpu()
        if scores.shape != self.average.shape:
            raise ValueError(f"scores {tuple(scores.shape)} but the pruner tracks {tuple(self.average.shape)}")
        if torch.isnan(scores).any():
            raise ValueError("head scores contain NaN")
        self.average = scores.clone() if self.updates == 0 else self.ema * self.average + (1 - self.ema) * scores
        self.updates += 1

    def due(self, step: int) -> int:
        """Number of heads that should be masked once ``step`` steps are done."""
        if step >= self.end:
            return self.target
        if step <= self.start:
            return 0
        return math.floor(self.target * (step - self.start) / (self.end - self.start))

    def step(self, step: int) -> bool:
        """Mask more heads if the schedule says so; True when the mask changed."""
        more = self.due(step) - len(self.masked)
        if more <= 0:
            return False
        if self.order is not None:
            chosen = [lh for lh in self.order if lh not in self.masked][:more]
        else:
            chosen = lowest_heads(self.average, more, exclude=set(self.masked), min_per_layer=self.min_per_layer)
        self.masked += chosen
        return True

    def masked_heads(self) -> dict[int, list[int]]:
        plan: dict[int, list[int]] = {}
        for layer, head in self.masked:
            plan.setdefault(layer, []).append(head)
        return {layer: sorted(hs) for layer, hs in sorted(plan.items())}

    def state_dict(self) -> dict:
        return {"average": self.average.clone(), "updates": torch.tensor(self.updates),
                "masked": torch.tensor(self.masked, dtype=torch.long).reshape(-1, 2)}

    def load_state_dict(self, state: dict) -> None:
        self.average = state["average"].clone().float()
        self.updates = int(state["updates"])
        self.masked = [tuple(int(v) for v in row) for row in state["masked"].tolist()]

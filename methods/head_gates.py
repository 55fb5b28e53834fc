"""Per-head gates: a (layers, heads) tensor multiplying each head's context before the output projection.

One mechanism serves two jobs:
- masking that can change between steps (progressive pruning): set a gate to 0;
- Michel et al.'s (2019) gradient importance: with ``requires_grad=True`` the gradient of the loss
  with respect to gate (l, h) equals ``Σ Att_h(x) · ∂L/∂Att_h(x)``, the sensitivity of the loss to
  the head (their eq. 3); accumulate its absolute value over data (:func:`methods.head_importance`).

Gates are indexed by ORIGINAL head index, so they stay meaningful after heads are removed.
"""
from __future__ import annotations

import torch
from torch import nn

from methods.attention_heads import HeadAdapter, attention_layers

__all__ = ["HeadGates"]


class HeadGates:
    """Attach gates to every supported attention layer of ``model``; ``remove()`` detaches them."""

    def __init__(self, model: nn.Module, requires_grad: bool = False):
        layers = attention_layers(model)
        if not layers:
            raise ValueError(f"{type(model).__name__} has no supported attention layer to gate")
        heads = max(a.original_num_heads for _, a in layers)
        param = next(model.parameters())
        self.values = torch.ones(len(layers), heads, dtype=param.dtype, device=param.device,
                                 requires_grad=requires_grad)
        self._hooks = [a.output_projection.register_forward_pre_hook(self._hook(layer, a)) for layer, a in layers]

    def _hook(self, layer: int, adapter: HeadAdapter):
        def hook(module: nn.Module, args: tuple):
            context = args[0]
            kept = torch.tensor(adapter.kept_heads(), dtype=torch.long, device=context.device)
            if kept.numel() == 0:
                return None
            gate = self.values[layer].index_select(0, kept).to(context.dtype)
            return (context * gate.repeat_interleave(adapter.head_dim),) + tuple(args[1:])
        return hook

    def set_masked(self, heads: dict[int, list[int]]) -> None:
        """Gate = 0 for ``heads`` ({layer: original indices}), 1 elsewhere."""
        with torch.no_grad():
            self.values.fill_(1.0)
            for layer, hs in heads.items():
                if hs:
                    self.values[layer, list(hs)] = 0.0

    def take_grad(self) -> torch.Tensor | None:
        """|∂L/∂gate| of the last backward pass (layers, heads), then clear it; None before any backward."""
        grad = self.values.grad
        if grad is None:
            return None
        self.values.grad = None
        return grad.detach().abs()

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

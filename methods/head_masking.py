"""Mask attention heads at forward time, without changing any weight."""
from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn

from methods.attention_heads import HeadAdapter, resolve_heads

__all__ = ["HeadMaskHandle", "mask_heads"]


class HeadMaskHandle:
    """Undo handle returned by :func:`mask_heads`; also a context manager."""

    def __init__(self, hooks: list[torch.utils.hooks.RemovableHandle], heads: dict[int, list[int]]):
        self._hooks = hooks
        self.heads = heads  # {layer: sorted original head indices} masked by this handle

    def remove(self) -> None:
        """Remove the masks (idempotent)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def __enter__(self) -> "HeadMaskHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _mask_hook(adapter: HeadAdapter, masked: frozenset[int]):
    """Forward pre-hook zeroing the masked heads' slices of the output projection's input.

    The mask is rebuilt from the adapter's current head layout, so it stays right if heads
    are removed while the mask is active.
    """
    cache: dict[tuple, torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple):
        context = args[0]
        key = (tuple(adapter.kept_heads()), adapter.head_dim, context.device, context.dtype)
        mask = cache.get(key)
        if mask is None:
            keep = [0.0 if h in masked else 1.0 for h in key[0]]
            mask = torch.tensor(keep, dtype=context.dtype, device=context.device).repeat_interleave(key[1])
            cache.clear()
            cache[key] = mask
        return (context * mask,) + tuple(args[1:])

    return hook


def mask_heads(model: nn.Module, heads: Mapping[int, Iterable[int]]) -> HeadMaskHandle:
    """Zero the context output of ``heads`` (``{layer: original head indices}``) in every forward.

    Implemented as a forward pre-hook on each layer's output projection, so it is independent of
    the attention implementation (eager, sdpa, fused). Masking an already removed head is a no-op.
    Raises ValueError for unknown layers/heads or a model without supported attention.
    """
    plan = resolve_heads(model, heads)
    hooks, record = [], {}
    for layer, (adapter, chosen) in plan.items():
        if chosen:
            hook = _mask_hook(adapter, frozenset(chosen))
            hooks.append(adapter.output_projection.register_forward_pre_hook(hook))
            record[layer] = sorted(chosen)
    return HeadMaskHandle(hooks, record)

"""Bring backbone features to one spatial form, (B, C, H, W), so CNN, ViT and MLP-Mixer features compare.

CNN maps (B, C, H, W) pass through. Tokens (B, N, C) (timm ViT / MLP-Mixer blocks, channels last)
become (B, C, s, s) with s = √N after the leading prefix tokens (class / distillation / register
tokens; timm puts them first) are dropped. With ``num_prefix_tokens=None`` the count is inferred:
0 if N is a perfect square, else 1 if N − 1 is (a class token); N and N − 1 are never both squares
for N > 1, so this is unambiguous. Anything else (e.g. DeiT's two prefix tokens, non-square
grids) raises ValueError: pass ``num_prefix_tokens`` explicitly.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["grid_shape", "resize_to", "to_grid"]


def _prefix_and_side(n: int, num_prefix_tokens: int | None) -> tuple[int, int]:
    candidates = (0, 1) if num_prefix_tokens is None else (num_prefix_tokens,)
    for prefix in candidates:
        side = math.isqrt(max(n - prefix, 0))
        if side > 0 and side * side == n - prefix:
            return prefix, side
    raise ValueError(f"{n} tokens minus {' or '.join(map(str, candidates))} prefix token(s) is not a perfect "
                     "square grid; pass num_prefix_tokens explicitly")


def to_grid(x: torch.Tensor, num_prefix_tokens: int | None = None) -> torch.Tensor:
    """(B, C, H, W) unchanged; (B, N, C) tokens → (B, C, √N', √N') with N' = N − prefix tokens."""
    if x.dim() == 4:
        return x
    if x.dim() != 3:
        raise ValueError(f"expected (B, C, H, W) maps or (B, N, C) tokens, got shape {tuple(x.shape)}")
    b, n, c = x.shape
    prefix, side = _prefix_and_side(n, num_prefix_tokens)
    return x[:, prefix:].transpose(1, 2).reshape(b, c, side, side)


def grid_shape(shape: Sequence[int], num_prefix_tokens: int | None = None) -> tuple[int, int, int]:
    """Per-sample shape without batch, (C, H, W) or tokens (N, C), → the (C, H, W) that :func:`to_grid` gives."""
    if len(shape) == 3:
        return tuple(int(s) for s in shape)
    if len(shape) != 2:
        raise ValueError(f"expected a per-sample shape (C, H, W) or (N, C), got {tuple(shape)}")
    n, c = int(shape[0]), int(shape[1])
    _, side = _prefix_and_side(n, num_prefix_tokens)
    return c, side, side


def resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize (B, C, H, W) to ``size`` = (H', W'): adaptive average pooling when shrinking (both sides
    ≥ target), bilinear interpolation otherwise; unchanged when the size already matches."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

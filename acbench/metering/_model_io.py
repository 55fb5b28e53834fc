"""Shared helpers: call a model on dict/tuple inputs, describe input shapes, evaluate in eval mode."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

Inputs = Mapping[str, Any] | Sequence[Any] | torch.Tensor


def call_model(model: nn.Module, inputs: Inputs) -> Any:
    """``model(**inputs)`` for a mapping, ``model(*inputs)`` for a sequence, ``model(inputs)`` for a tensor."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    return model(*inputs)


def input_shapes(inputs: Inputs) -> dict[str, list[int]]:
    """Shapes of the tensor inputs, keyed by keyword (mapping) or ``arg{i}`` (sequence)."""
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    items = inputs.items() if isinstance(inputs, Mapping) else ((f"arg{i}", v) for i, v in enumerate(inputs))
    return {k: list(v.shape) for k, v in items if isinstance(v, torch.Tensor)}


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode (no dropout) and restore each one's flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training

"""The teacher's outputs for distillation, computed once per training example instead of once per step.

The teacher is frozen and in ``eval()`` mode and the inputs are not augmented, so its output logits
(teacher forcing on the gold prefix) and its attention projections are functions of the example
alone: computing them once and reading them back gives the loss a per-step teacher forward gives
(up to float rounding of a different padding), without the forward. Each example's tensors are kept
cropped to its own lengths (logits: gold steps × outputs; Q/K/V: heads × tokens × head width) and
padded back into a batch by :meth:`TeacherCache.batch`; padded positions are zeros, which every
consumer masks (the losses weight rows by the labels and the attention mask).
"""
from __future__ import annotations

from typing import Sequence

import torch

from acbench.solver.examples import Example, OutputVocab, collate
from methods.attention_capture import QKVCapture, capture_qkv

__all__ = ["TeacherCache", "cache_bytes"]


def cache_bytes(examples: Sequence[Example], vocab_size: int, layer_widths: dict[int, int], keys: Sequence[str]) -> int:
    """Bytes (float32) the cache of ``examples`` takes: logits plus ``keys`` (e.g. q, k) of the layers
    ``layer_widths`` maps to their width (heads × head width)."""
    floats = 0
    for e in examples:
        floats += len(e.target or []) * vocab_size
        floats += sum(len(keys) * width * len(e.input_ids) for width in layer_widths.values())
    return 4 * floats


class TeacherCache:
    """Per-example teacher logits and (optionally) captured Q/K/V of some encoder layers."""

    def __init__(self, logits: dict[str, torch.Tensor], qkv: dict[str, dict[int, dict[str, torch.Tensor]]]):
        self.logits, self.qkv = logits, qkv

    @classmethod
    def build(cls, teacher, examples: Sequence[Example], vocab: OutputVocab, layers: Sequence[int] = (),
              keys: Sequence[str] = ("q", "k", "v"), batch_size: int = 64) -> "TeacherCache":
        """Run ``teacher`` (eval mode, no gradients) once over ``examples`` (batched by length)."""
        teacher.eval()
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
        logits: dict[str, torch.Tensor] = {}
        qkv: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                chunk = [examples[i] for i in order[start:start + batch_size]]
                with capture_qkv(teacher.encoder, list(layers)) as captured:
                    out = teacher(collate(chunk, vocab)).logits
                for row, e in enumerate(chunk):
                    if e.id in logits:
                        raise ValueError(f"example id {e.id!r} appears twice: the cache is keyed by id")
                    logits[e.id] = out[row, :len(e.target or [])].clone()
                    length = len(e.input_ids)
                    qkv[e.id] = {layer: {k: captured[layer][k][row, :, :length].clone() for k in keys}
                                 for layer in layers if layer in captured}
        return cls(logits, qkv)

    def batch(self, examples: Sequence[Example], collated: dict[str, torch.Tensor]) -> tuple[torch.Tensor, QKVCapture]:
        """(logits (B, steps, outputs), Q/K/V capture {layer: {key: (B, H, T, d)}}) for ``examples``,
        padded as ``collated`` (the batch :func:`acbench.solver.examples.collate` made of them)."""
        steps = collated["labels"].shape[1]
        tokens = collated["input_ids"].shape[1]
        first = self.logits[examples[0].id]
        logits = first.new_zeros(len(examples), steps, first.shape[-1])
        for i, e in enumerate(examples):
            row = self.logits[e.id]
            logits[i, :row.shape[0]] = row
        captured = QKVCapture()
        for layer, parts in self.qkv[examples[0].id].items():
            captured[layer] = {}
            for key, value in parts.items():
                heads, _, width = value.shape
                out = value.new_zeros(len(examples), heads, tokens, width)
                for i, e in enumerate(examples):
                    part = self.qkv[e.id][layer][key]
                    out[i, :, :part.shape[1]] = part
                captured[layer][key] = out
        return logits, captured

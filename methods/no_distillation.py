"""The no-distillation control: the student trained with cross-entropy only."""
from __future__ import annotations

from torch import nn

from methods.registry import NoParams, register

__all__ = ["CrossEntropyOnly"]


@register("image_kd", "none", NoParams)
class CrossEntropyOnly(nn.Module):
    """CE alone; the teacher's outputs are ignored."""

    def __init__(self, params: NoParams, student_shapes, teacher_shapes, num_classes: int):
        super().__init__()
        self.params = params

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress: float):
        return ce, {"ce": float(ce.detach())}

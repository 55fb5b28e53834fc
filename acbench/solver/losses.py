"""Solver losses, each a mean over *examples* (a per-example mean over its output steps first), so that
DDP's average over equal shards equals one process's loss on the whole batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.logit_kd import kd_kl_loss


def _per_example(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    valid = (labels != -100).to(values.dtype)
    return ((values * valid).sum(1) / valid.sum(1).clamp_min(1.0)).mean()


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the gold prefix tokens."""
    per_token = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none")
    return _per_example(per_token.view(labels.shape), labels)


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                 temperature: float) -> torch.Tensor:
    """T²·KL(teacher ‖ student) of the output distributions at every gold step (teacher forcing)."""
    per_token = kd_kl_loss(student_logits, teacher_logits, temperature, reduction="none")
    return _per_example(per_token, labels)

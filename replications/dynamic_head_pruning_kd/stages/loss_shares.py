"""The share of the distillation objective each term carries, averaged over training (issue 13, item 5).

The objective is L = λ1·(KL + β·alignment) + λ2·task. From the per-step logs of the raw terms
(``kl``, ``align``, ``task``), each weighted term's mean over the steps is divided by the mean of
their sum: a term with a share near 0 cannot move the student, whatever its raw size.
"""
from __future__ import annotations

import statistics


def loss_shares(logs: dict[str, list[float]], kd) -> dict[str, float]:
    """``{"kl", "align", "task"}`` → share (0–1) of the mean objective; ``kd`` holds λ1, λ2 and β.
    A term not logged (alignment off) has share 0."""
    weights = {"kl": kd.lambda_distill, "align": kd.lambda_distill * kd.align_weight, "task": kd.lambda_task}
    means = {term: w * statistics.fmean(logs[term]) if logs.get(term) else 0.0 for term, w in weights.items()}
    total = sum(means.values())
    if total <= 0:
        raise ValueError(f"the objective's mean is {total}: no share is defined")
    return {term: value / total for term, value in means.items()}

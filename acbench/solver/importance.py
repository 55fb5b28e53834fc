"""Which head-importance score a pruning run uses, and computing it from one batch or many."""
from __future__ import annotations

import random
import torch
from pydantic import Field, SerializeAsAny, model_validator

from acbench.config import Strict
from acbench.solver.losses import task_loss
from methods.attention_capture import capture_qkv, layer_probs
from methods.head_gates import HeadGates
from methods.head_importance import attention_entropy
from methods.registry import MethodParams, UnknownMethod, lookup, parse_params

FAMILY = "head_importance"


class ImportanceSettings(Strict):
    """Which head-importance score ranks the heads (``kind``: a registered ``head_importance`` method,
    :mod:`methods.head_importance`: ``combined`` S = α·w + (1−α)·H of arXiv 2511.17577, the controls
    ``weight_norm`` (α = 1), ``entropy`` (α = 0), ``random`` (a seeded random order) and ``michel``
    (|∂L/∂gate|, Michel et al.)), the score's own parameters beside ``kind`` (validated against its
    schema), and how many heads each layer keeps."""

    kind: str = "combined"
    min_heads_per_layer: int = Field(1, ge=0)
    params: SerializeAsAny[MethodParams]

    @model_validator(mode="before")
    @classmethod
    def _params_of_kind(cls, data):
        if not isinstance(data, dict) or "params" in data:
            return data
        kind = data.get("kind", "combined")
        rest = {k: v for k, v in data.items() if k not in ("kind", "min_heads_per_layer")}
        try:
            params = parse_params(FAMILY, kind, rest)
        except UnknownMethod as exc:
            raise ValueError(str(exc)) from None
        out = {"kind": kind, "params": params}
        if "min_heads_per_layer" in data:
            out["min_heads_per_layer"] = data["min_heads_per_layer"]
        return out

    @property
    def _score(self):
        return lookup(FAMILY, self.kind).impl

    @property
    def needs_attentions(self) -> bool:
        return self._score.needs_attentions

    @property
    def needs_gate_grad(self) -> bool:
        return self._score.needs_gate_grad

    @property
    def random_order(self) -> bool:
        return self._score.random_order


def scores(settings: ImportanceSettings, encoder, entropy: torch.Tensor | None,
           gate_grad: torch.Tensor | None) -> torch.Tensor | None:
    """(layers, heads) importance, higher = keep; None for ``random`` (no score)."""
    return settings._score.score(settings.params, encoder, entropy, gate_grad)


def random_order(num_layers: int, num_heads: int, seed: int) -> list[tuple[int, int]]:
    order = [(layer, head) for layer in range(num_layers) for head in range(num_heads)]
    random.Random(seed).shuffle(order)
    return order


def encoder_entropy(model, batch: dict) -> torch.Tensor:
    """(layers, heads) attention entropy of ``model``'s encoder on ``batch``, from maps derived from captured
    Q/K (before attention dropout, so the same in train and eval mode up to hidden-state dropout)."""
    with torch.no_grad(), capture_qkv(model.encoder) as qkv:
        model(batch)
    return attention_entropy(layer_probs(qkv, batch["attention_mask"]), batch["attention_mask"])


def static_scores(settings: ImportanceSettings, model, batches: list[dict]) -> torch.Tensor | None:
    """Importance of ``model``'s encoder heads averaged over ``batches`` (model unchanged, eval mode)."""
    if settings.random_order:
        return None
    model.eval()
    gates = HeadGates(model.encoder, requires_grad=settings.needs_gate_grad)
    entropy, grad = None, None
    try:
        for batch in batches:
            if settings.needs_gate_grad:
                task_loss(model(batch).logits, batch["labels"]).backward()
                g = gates.take_grad()
                grad = g if grad is None else grad + g
            elif settings.needs_attentions:
                ent = encoder_entropy(model, batch)
                entropy = ent if entropy is None else entropy + ent
    finally:
        gates.remove()
        model.zero_grad(set_to_none=True)
    if entropy is not None:
        entropy = entropy / len(batches)
    return scores(settings, model.encoder, entropy, grad)

"""FLOP counts: fvcore on a traced forward pass, and the textbook count for one BERT layer.

Convention (both functions): one fused multiply-add counts as ONE flop, i.e. the numbers are MACs,
as fvcore counts them. Multiply by 2 for "multiplies + adds" FLOPs. A matmul of (m x k) by (k x n)
counts m*k*n. Build HF models with ``attn_implementation="eager"``: with SDPA the attention matmuls
happen inside one fused op that fvcore does not count.
"""
from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

from acbench.metering._model_io import Inputs, eval_mode, input_shapes

#: fvcore operator names (as in ``by_operator``) that are matrix products.
MATMUL_OPERATORS = frozenset({"linear", "matmul", "mm", "bmm", "addmm", "einsum"})
CONVENTION = "fvcore: one fused multiply-add = 1 flop (MACs); biases, softmax, activations, adds not counted"


class _KeywordAdapter(nn.Module):
    """Lets ``torch.jit.trace`` (positional-only) drive a model that takes keyword inputs."""

    def __init__(self, model: nn.Module, tensor_keys: list[str], constants: dict):
        super().__init__()
        self.model, self.tensor_keys, self.constants = model, tensor_keys, constants

    def forward(self, *tensors):
        return self.model(**dict(zip(self.tensor_keys, tensors)), **self.constants)


def count_flops(model: nn.Module, inputs: Inputs) -> dict:
    """Count the forward pass's flops with fvcore ``FlopCountAnalysis`` (model in eval mode, no grad).

    ``inputs`` is a dict of keyword arguments (non-tensor values are passed as constants), a tuple of
    positional arguments or one tensor. Returns ``{"total", "by_operator", "matmul_total",
    "input_shapes", "skipped_operators", "convention"}``: ``matmul_total`` sums the operators in
    :data:`MATMUL_OPERATORS`; fvcore's other counted operators are the norms (layer norm = 5 flops per
    element with affine, 4 without; eval-mode batch norm 2 or 1) and a few elementwise ones (upsample,
    adaptive pooling). ``skipped_operators`` maps each operator fvcore had no
    counter for (add, softmax, gelu, ...) to its number of calls: those contribute 0.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fvcore's import-time torch.jit.script use
        from fvcore.nn import FlopCountAnalysis

    if isinstance(inputs, dict):
        keys = [k for k, v in inputs.items() if isinstance(v, torch.Tensor)]
        constants = {k: v for k, v in inputs.items() if not isinstance(v, torch.Tensor)}
        target, args = _KeywordAdapter(model, keys, constants), tuple(inputs[k] for k in keys)
    else:
        target, args = model, (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)

    fvcore_logger = logging.getLogger("fvcore.nn.jit_analysis")
    level = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)
    try:
        with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jit TracerWarnings from model code
            analysis = FlopCountAnalysis(target, args)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_operator = {op: int(n) for op, n in analysis.by_operator().items()}
            total = int(analysis.total())
            skipped = {op.removeprefix("aten::"): int(n) for op, n in analysis.unsupported_ops().items()}
    finally:
        fvcore_logger.setLevel(level)
    return {
        "total": total,
        "by_operator": by_operator,
        "matmul_total": sum(n for op, n in by_operator.items() if op in MATMUL_OPERATORS),
        "input_shapes": input_shapes(inputs),
        "skipped_operators": skipped,
        "convention": CONVENTION,
    }


def analytic_bert_layer_flops(seq_len: int, hidden: int, num_heads: int, head_dim: int, intermediate: int,
                              batch: int = 1, *, include_layer_norm: bool = False) -> dict:
    """Textbook flop count of one BERT encoder layer's forward pass, one multiply-add = 1 flop (MACs).

    With B = batch, S = seq_len, h = hidden, a = num_heads * head_dim (= h unless heads were removed),
    I = intermediate:

    - ``qkv_projections``   3 * B*S*h*a   (query, key, value)
    - ``attention_scores``  B*num_heads*S*S*head_dim   (Q Kᵀ)
    - ``attention_context`` B*num_heads*S*S*head_dim   (softmax(...) V)
    - ``output_projection`` B*S*a*h
    - ``ffn``               2 * B*S*h*I   (intermediate.dense and output.dense)

    ``matmul_total`` is their sum. Excluded: biases, the 1/sqrt(head_dim) scaling, mask addition,
    softmax, GELU, residual additions, dropout; fvcore does not count these either. Layer norm is
    excluded unless ``include_layer_norm``, which adds fvcore's convention for the layer's two affine
    layer norms: 5 flops per element, 2 * 5*B*S*h. ``total`` = ``matmul_total`` + ``layer_norm``.
    """
    tokens, attn_width = batch * seq_len, num_heads * head_dim
    parts = {
        "qkv_projections": 3 * tokens * hidden * attn_width,
        "attention_scores": batch * num_heads * seq_len * seq_len * head_dim,
        "attention_context": batch * num_heads * seq_len * seq_len * head_dim,
        "output_projection": tokens * attn_width * hidden,
        "ffn": 2 * tokens * hidden * intermediate,
    }
    parts["matmul_total"] = sum(parts.values())
    parts["layer_norm"] = 2 * 5 * tokens * hidden if include_layer_norm else 0
    parts["total"] = parts["matmul_total"] + parts["layer_norm"]
    return parts

"""TinyBERT's attention loss as its official code computes it (task_distill.py), against an independent
re-computation from the models' own layers: pre-softmax scores plus the −10000 padding mask, values ≤ −1e2
set to 0, nn.MSELoss per paired layer, summed over layers (issue 15 item 2, issue 13 item 5)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from methods.attention_alignment import alignment_loss, qkv_layers, uniform_layer_map
from methods.attention_capture import capture_qkv

HEADS, WIDTH = 4, 32


def _bert(layers: int, seed: int):
    import transformers

    config = transformers.BertConfig(hidden_size=WIDTH, num_hidden_layers=layers, num_attention_heads=HEADS,
                                     intermediate_size=64, vocab_size=50, initializer_range=0.3)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return transformers.BertModel(config, add_pooling_layer=False).eval()


def _tinybert_scores(model, ids, mask) -> list[torch.Tensor]:
    """Per layer, what TinyBERT's BertSelfAttention returns: QKᵀ/√d + (1 − mask)·(−10000), computed from the
    layer's input hidden states and its query/key weights (no hooks)."""
    hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    additive = (1.0 - mask[:, None, None, :].float()) * -10000.0
    out = []
    for layer, h in zip(model.encoder.layer, hidden):
        sa = layer.attention.self
        q = sa.query(h).unflatten(-1, (HEADS, -1)).transpose(1, 2)
        k = sa.key(h).unflatten(-1, (HEADS, -1)).transpose(1, 2)
        out.append(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + additive)
    return out


def test_attention_mse_scores_form_is_tinyberts_code():
    student, teacher = _bert(2, seed=1), _bert(4, seed=2)
    ids = torch.randint(0, 50, (3, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 8, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 3:] = 0
    layer_map = uniform_layer_map(2, 4)  # TinyBERT: student layer m <- teacher layer (m+1)·L/M − 1
    with torch.no_grad():
        s_att, t_att = _tinybert_scores(student, ids, mask), _tinybert_scores(teacher, ids, mask)
        expected = 0.0
        for s_layer, t_layer in layer_map:
            s = torch.where(s_att[s_layer] <= -1e2, torch.zeros_like(s_att[s_layer]), s_att[s_layer])
            t = torch.where(t_att[t_layer] <= -1e2, torch.zeros_like(t_att[t_layer]), t_att[t_layer])
            expected = expected + nn.MSELoss()(s, t)
        s_layers, t_layers = qkv_layers("attention_mse", layer_map)
        with capture_qkv(student, s_layers) as s_qkv:
            student(input_ids=ids, attention_mask=mask)
        with capture_qkv(teacher, t_layers) as t_qkv:
            teacher(input_ids=ids, attention_mask=mask)
        ours = alignment_loss("attention_mse", layer_map, mask, student_qkv=s_qkv, teacher_qkv=t_qkv)
        probabilities = alignment_loss("attention_mse", layer_map, mask, student_qkv=s_qkv, teacher_qkv=t_qkv,
                                       params={"form": "probabilities"})
    assert float(expected) > 0.1  # scores of this size make the comparison meaningful
    assert float(ours) == pytest.approx(float(expected), rel=1e-5)
    assert float(probabilities) != pytest.approx(float(expected), rel=0.1)  # the named option is another loss

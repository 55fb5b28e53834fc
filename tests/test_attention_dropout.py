"""Attention consumers read maps before attention dropout: an identical student in training mode has
zero alignment loss, and the entropy score does not depend on train/eval mode (issues 13 item 4, 15 item 1).

The student has attention dropout (p = 0.5) and no hidden dropout, so the only train/eval difference is
the one the bug was about; ``test_setup_has_active_attention_dropout`` shows the models really drop attention.
"""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import OutputVocab
from acbench.solver.importance import encoder_entropy
from acbench.solver.model import MWPSolver
from methods.attention_alignment import align_losses, alignment_loss, qkv_layers
from methods.attention_capture import capture_qkv
from methods.minilm import attention_distribution_loss
from replications.attention_distillation.stages.student import Variant, _encoder_loss

VOCAB, LAYERS, HEADS = 30, 3, 4


def _solver() -> MWPSolver:
    torch.manual_seed(0)
    spec = EncoderSpec(kind="scratch", num_layers=LAYERS, num_heads=HEADS, hidden=16, intermediate=32, dropout=0.0)
    model = MWPSolver(build_encoder(spec, VOCAB), OutputVocab(("1",), 4), 1, 2, 6, 0.0)
    for layer in model.encoder.encoder.layer:
        layer.attention.self.dropout.p = 0.5  # attention dropout only
    return model


def _batch(batch=4, seq=9, steps=4):
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, 6:] = 0
    mask[3, 4:] = 0
    return {"input_ids": torch.randint(0, VOCAB, (batch, seq), generator=g), "attention_mask": mask,
            "slot_positions": torch.tensor([[1, 2]] * batch), "slot_mask": torch.ones(batch, 2, dtype=torch.bool),
            "decoder_input": torch.randint(0, 5, (batch, steps), generator=g),
            "labels": torch.randint(0, 5, (batch, steps), generator=g)}


def _pair():
    teacher = _solver().eval()
    return teacher, copy.deepcopy(teacher).train()


def test_setup_has_active_attention_dropout():
    """What ``output_attentions`` gives in training mode: dropped-out maps, KL far from 0 (the old bug)."""
    teacher, student = _pair()
    batch = _batch()
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    s = student.encoder(**inputs, output_attentions=True).attentions[-1]
    t = teacher.encoder(**inputs, output_attentions=True).attentions[-1]
    assert attention_distribution_loss(s, t, batch["attention_mask"]) > 0.1


LOSSES = [(kind, {}) for kind in align_losses()] + [("attention_mse", {"form": "probabilities"})]


@pytest.mark.parametrize("kind,params", LOSSES, ids=[f"{k}{'-' + '-'.join(p.values()) if p else ''}" for k, p in LOSSES])
def test_identical_student_in_training_mode_has_zero_distillation_loss(kind, params):
    """The attention-distillation replication's distillation-phase loss (every registered alignment loss)."""
    assert set(align_losses()) >= {"attention_mse", "minilm", "minilm_no_vr", "minilmv2"}
    teacher, student = _pair()
    variant = Variant(name="v", loss=kind, loss_params=params)
    loss_fn = _encoder_loss(variant, SimpleNamespace(encoder=student.encoder), SimpleNamespace(encoder=teacher.encoder),
                            relation_heads=4)
    value, _ = loss_fn(student.encoder, _batch(), 0)
    assert student.training and abs(float(value.detach())) < 1e-6
    value.backward()  # the loss still trains the student


@pytest.mark.parametrize("kind,params", LOSSES, ids=[f"{k}{'-' + '-'.join(p.values()) if p else ''}" for k, p in LOSSES])
def test_identical_student_in_training_mode_has_zero_alignment_over_kept_heads(kind, params):
    """The pruning replication's alignment term: every layer paired with itself, restricted to kept heads,
    captured from the whole solver's training forward (the one its task and KD losses use)."""
    teacher, student = _pair()
    batch = _batch()
    layer_map = [(layer, layer) for layer in range(LAYERS)]
    s_layers, t_layers = qkv_layers(kind, layer_map)
    with capture_qkv(student.encoder, s_layers) as s_qkv:
        student(batch)
    with torch.no_grad(), capture_qkv(teacher.encoder, t_layers) as t_qkv:
        teacher(batch)
    kept = {0: [0, 2, 3], 1: [1], 2: [0, 1, 2, 3]}
    value = alignment_loss(kind, layer_map, batch["attention_mask"], student_qkv=s_qkv, teacher_qkv=t_qkv, kept=kept,
                           relation_heads=4, params=params)
    assert abs(float(value)) < 1e-6


def test_entropy_score_is_the_same_in_train_and_eval_mode():
    model = _solver()
    batch = _batch()
    train_mode = encoder_entropy(model.train(), batch)
    eval_mode = encoder_entropy(model.eval(), batch)
    assert train_mode.shape == (LAYERS, HEADS)
    torch.testing.assert_close(train_mode, eval_mode, atol=1e-6, rtol=0)
    assert float(train_mode.max()) <= math.log(9) + 1e-6  # entropies of real rows over ≤ 9 keys

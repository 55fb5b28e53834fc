"""The attention-distillation replication's pieces: student construction, iterative pruning, head scores."""
from __future__ import annotations

import math

import pytest
import torch

from acbench.solver.importance import ImportanceSettings
from replications.attention_distillation.stages.pruning_curve import head_scores
from replications.attention_distillation.stages.pooled import join
from replications.attention_distillation.stages.student import StudentShape, build_student
from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import OutputVocab
from acbench.solver.model import MWPSolver
from methods.head_gates import HeadGates
from methods.iterative_pruning import as_plan, iterative_pruning

VOCAB = 30


def _teacher(layers=4, heads=2, hidden=16) -> MWPSolver:
    torch.manual_seed(0)
    spec = EncoderSpec(kind="scratch", num_layers=layers, num_heads=heads, hidden=hidden, intermediate=2 * hidden,
                       dropout=0.0)
    return MWPSolver(build_encoder(spec, VOCAB), OutputVocab(("1",), 4), 1, 2, 6, 0.0).eval()


def _batch(batch=3, seq=7, steps=4):
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, 5:] = 0
    return {"input_ids": torch.randint(0, VOCAB, (batch, seq), generator=g), "attention_mask": mask,
            "slot_positions": torch.tensor([[1, 2]] * batch), "slot_mask": torch.ones(batch, 2, dtype=torch.bool),
            "decoder_input": torch.randint(0, 5, (batch, steps), generator=g),
            "labels": torch.randint(0, 5, (batch, steps), generator=g)}


def test_student_with_all_teacher_layers_is_the_teacher():
    teacher = _teacher()
    student = build_student(teacher, StudentShape(layers=4, hidden=16), seed=3).eval()
    batch = _batch()
    with torch.no_grad():
        assert torch.equal(student(batch).logits, teacher(batch).logits)


def test_student_copies_the_uniformly_mapped_teacher_layers_embeddings_and_decoder():
    teacher = _teacher(layers=4)
    student = build_student(teacher, StudentShape(layers=2, hidden=16), seed=0)
    t, s = teacher.state_dict(), student.state_dict()
    for s_layer, t_layer in ((0, 1), (1, 3)):  # g(m) = (m+1)·4/2 − 1
        for key in ("attention.self.query.weight", "output.dense.bias"):
            assert torch.equal(s[f"encoder.encoder.layer.{s_layer}.{key}"], t[f"encoder.encoder.layer.{t_layer}.{key}"])
    assert torch.equal(s["encoder.embeddings.word_embeddings.weight"], t["encoder.embeddings.word_embeddings.weight"])
    assert torch.equal(s["fixed_head.weight"], t["fixed_head.weight"])
    assert student.encoder.config.num_hidden_layers == 2


def test_narrow_student_needs_random_init_and_keeps_the_head_count():
    teacher = _teacher(heads=4, hidden=16)
    with pytest.raises(ValueError, match="teacher's width"):
        build_student(teacher, StudentShape(layers=2, hidden=8), seed=0)
    student = build_student(teacher, StudentShape(layers=3, hidden=8, init="random"), seed=0)
    assert student.encoder.config.num_attention_heads == 4 and student.encoder.config.intermediate_size == 16
    assert student(_batch()).logits.shape == teacher(_batch()).logits.shape


def test_iterative_pruning_rescores_the_current_model_each_step():
    base = torch.arange(12, dtype=torch.float).view(3, 4)  # (0,0) least important ... (2,3) most
    seen, applied = [], []

    def score(pruned):
        seen.append(set(pruned))
        s = base.clone()
        if pruned:  # after the first step layer 2 looks unimportant: the re-score must be used
            s[2] = -1.0
        return s

    curve = iterative_pruning(3, 4, step=2, steps=3, score=score, apply=lambda p: applied.append(set(p)),
                              measure=lambda f, p: len(p), min_per_layer=1)
    assert [f for f, _ in curve] == [0.0, 2 / 12, 4 / 12, 6 / 12]
    assert [m for _, m in curve] == [0, 2, 4, 6]
    assert applied[0] == {(0, 0), (0, 1)}
    assert applied[1] == {(0, 0), (0, 1), (2, 0), (2, 1)}
    assert applied[2] - applied[1] == {(2, 2), (0, 2)}  # layer 2 keeps one head; then the next lowest
    assert seen == [set(), applied[0], applied[1]]


def test_iterative_pruning_rejects_more_steps_than_prunable_heads():
    with pytest.raises(ValueError, match="exceed"):
        iterative_pruning(2, 2, step=1, steps=3, score=lambda p: torch.zeros(2, 2), apply=lambda p: None,
                          measure=lambda f, p: 0, min_per_layer=1)


def test_pooled_stage_joins_folds_and_refuses_overlapping_items():
    from acbench.items import Outcomes

    f0 = Outcomes(("fold0/a", "fold0/b"), (True, False), ("x", "y"))
    f1 = Outcomes(("fold1/c",), (True,), ("z",))
    joined = join([f0, f1])
    assert joined.ids == ("fold0/a", "fold0/b", "fold1/c") and joined.correct == (True, False, True)
    with pytest.raises(ValueError, match="overlap"):
        join([f0, f0])


def test_distillation_plateau_score_is_relative_to_the_starting_loss():
    """The validation score is −loss/loss-before-training: −1 at the start, whatever the loss's scale,
    and it is computed in eval mode (identical calls give identical values despite dropout)."""
    from replications.attention_distillation.stages.student import _relative_loss_score, plateau_share

    teacher = _teacher()
    student = build_student(teacher, StudentShape(layers=2, hidden=16), seed=0)
    for scale in (1.0, 1000.0):
        def loss_fn(module, batch, step, scale=scale):
            out = module.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            return scale * out.last_hidden_state.pow(2).mean(), {}
        score = _relative_loss_score(loss_fn, student, [_batch()])
        assert score(student) == pytest.approx(-1.0)
    assert plateau_share({"a-s0": {"distill_plateau_reached": 1.0, "finetune_plateau_reached": 0.0},
                          "b-s0": {"finetune_plateau_reached": 1.0}}) == pytest.approx(200 / 3)
    assert plateau_share({"a-s0": {"accuracy": 1.0}}) == 100.0


@pytest.mark.parametrize("kind", ["michel", "combined"])
def test_head_scores_leave_pruned_heads_out(kind):
    model = _teacher(layers=2, heads=4)
    pruned = {(0, 1), (1, 3)}
    gates = HeadGates(model.encoder)
    gates.set_masked(as_plan(pruned))
    scores = head_scores(ImportanceSettings(kind=kind), model, [_batch()], pruned)
    assert scores.shape == (2, 4)
    assert math.isnan(scores[0, 1]) and math.isnan(scores[1, 3])
    finite = scores[~torch.isnan(scores)]
    assert finite.numel() == 6 and torch.isfinite(finite).all()
    if kind == "michel":  # ℓ2-normalised per layer over the heads still present
        for layer in range(2):
            row = scores[layer][~torch.isnan(scores[layer])]
            assert torch.isclose(row.norm(), torch.tensor(1.0), atol=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_curve_table_signs_each_drop_once():
    from replications.attention_distillation.stages.pruning_curve import _signed

    assert [_signed(x) for x in (-0.7, 1.04, -0.04, 0.0, 12.5)] == ["−0.7", "+1.0", "0.0", "0.0", "+12.5"]

"""The divergence stop: the kept checkpoint has finite weights and loss, the message names the step
and the fix, the same settings stop again at once, changed settings start cleanly."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from acbench.training import TrainingDiverged, TrainSettings, latest_checkpoint, train
from acbench.training.checkpoint import read_state


class _InfGradient(torch.autograd.Function):
    """Identity forward (a finite loss), infinite gradient backward: the update makes the weights NaN."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def _train(tmp_path, lr: float, blow_up_at: int | None):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    examples = [torch.tensor([float(i), 1.0, -float(i)]) for i in range(8)]

    def loss_fn(module, batch, step):
        out = module(batch)
        if blow_up_at is not None and step + 1 == blow_up_at:
            out = _InfGradient.apply(out)
        return (out ** 2).mean(), {}

    settings = TrainSettings(epochs=2, batch_size=2, lr=lr, checkpoint_every=2, max_grad_norm=None, warmup_ratio=0)
    return train(model, examples, torch.stack, loss_fn, settings, tmp_path / "ckpt", run_key=f"lr={lr}", desc="tiny")


def test_nonfinite_weights_are_never_checkpointed_and_the_message_names_step_and_fix(tmp_path):
    with pytest.raises(TrainingDiverged) as err:
        _train(tmp_path, 0.1, blow_up_at=5)  # the update of step 5 makes the weights NaN; the loss of 5 was finite
    text = str(err.value)
    assert "training diverged" in text and "at step 6 of 8" in text  # the next loss is NaN
    assert "kept the last checkpoint with finite weights and loss, step 4" in text
    assert "lower the learning rate (lr is 0.1) or set max_grad_norm" in text
    kept = latest_checkpoint(tmp_path / "ckpt")
    assert read_state(kept)["step"] == 4
    from safetensors.torch import load_file
    assert all(torch.isfinite(t).all() for t in load_file(kept / "model.safetensors").values())


def test_weights_check_refuses_a_checkpoint_at_the_step_that_broke_them(tmp_path):
    with pytest.raises(TrainingDiverged, match="weights became non-finite .* at step 4 of 8"):
        _train(tmp_path, 0.1, blow_up_at=4)  # step 4's update breaks the weights; its checkpoint is refused
    assert read_state(latest_checkpoint(tmp_path / "ckpt"))["step"] == 2


def test_same_settings_stop_at_once_changed_settings_start_cleanly(tmp_path):
    with pytest.raises(TrainingDiverged):
        _train(tmp_path, 0.1, blow_up_at=5)
    with pytest.raises(TrainingDiverged, match="diverged before; change it"):
        _train(tmp_path, 0.1, blow_up_at=None)  # would resume from step 4 into the same divergence
    result = _train(tmp_path, 0.01, blow_up_at=None)  # the user lowered lr: a fresh run
    assert result.resumed_from is None and result.steps == 8
    assert all(torch.isfinite(torch.tensor(result.losses)))

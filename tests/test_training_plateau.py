"""Plateau training (model selection on a validation score) and length-bucketed batches of the shared loop."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from acbench.training import PlateauSettings, TrainSettings, train
from acbench.training.loop import best_index, epoch_batches, evaluation_steps, plateau_stop


def _settings(**kw) -> TrainSettings:
    base = dict(epochs=8, batch_size=4, lr=0.05, warmup_ratio=0.0, checkpoint_every=100)
    return TrainSettings(**{**base, **kw})


def test_bucketed_epoch_sees_every_example_once_and_shrinks_padding():
    lengths = [int(x) for x in torch.randint(5, 120, (96,), generator=torch.Generator().manual_seed(1))]
    plain = epoch_batches(96, _settings(), 3)
    bucketed = epoch_batches(96, _settings(length_buckets=6), 3, lengths)
    assert sorted(i for b in bucketed for i in b) == list(range(96))
    assert all(len(b) == 4 for b in bucketed) and len(bucketed) == len(plain) == 24

    def padding(batches):  # pad positions a batch padded to its longest example would hold
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    assert padding(bucketed) < 0.5 * padding(plain)
    assert bucketed == epoch_batches(96, _settings(length_buckets=6), 3, lengths)  # seed and epoch only
    assert bucketed != epoch_batches(96, _settings(length_buckets=6), 4, lengths)


def test_bucketing_without_lengths_is_refused():
    with pytest.raises(ValueError, match="length of every training example"):
        epoch_batches(16, _settings(length_buckets=2), 0)


def test_plateau_rules():
    plateau = PlateauSettings(patience=2, min_delta=0.5)
    assert best_index([1.0, 1.4, 1.6, 1.2], 0.5) == 2  # 1.4 is not > 1.0 + 0.5; 1.6 is
    assert best_index([3.0, 3.0, 2.0], 0.0) == 0
    assert not plateau_stop([1.0, 2.0, 1.5], [1, 2, 3], 1, plateau)
    assert plateau_stop([1.0, 2.0, 1.5, 2.4], [1, 2, 3, 4], 1, plateau)  # 2.4 <= 2.0 + 0.5
    assert not plateau_stop([1.0, 2.0, 1.5, 2.6], [1, 2, 3, 4], 1, plateau)
    late = PlateauSettings(patience=1, min_epochs=5)
    assert not plateau_stop([2.0, 1.0], [1, 2], 1, late)  # never before min_epochs
    assert evaluation_steps(10, 4, PlateauSettings(every_epochs=1)) == [4, 8, 10]


class _Scripted:
    """A validation score read from a script, remembering the weights it scored."""

    def __init__(self, scores, fail_at: int | None = None):
        self.scores, self.fail_at, self.seen = list(scores), fail_at, []

    def __call__(self, model: nn.Module) -> float:
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise KeyboardInterrupt("killed during validation")
        self.seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return self.scores[len(self.seen) - 1]


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=g)
    return [(x[i], x[i].sum()) for i in range(16)]


def _collate(batch):
    return torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])


def _loss(module, batch, step):
    x, y = batch
    return ((module(x).squeeze(-1) - y) ** 2).mean(), {}


def _model():
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def test_plateau_stops_after_patience_and_keeps_the_best_weights(tmp_path):
    settings = _settings(plateau=PlateauSettings(patience=2))
    validate = _Scripted([1.0, 3.0, 2.0, 2.5, 9.0, 9.0, 9.0, 9.0])
    model = _model()
    result = train(model, _data(), _collate, _loss, settings, tmp_path / "ckpt", validate=validate)
    assert result.valid_scores == [1.0, 3.0, 2.0, 2.5]  # stopped: two evaluations without beating 3.0
    assert result.valid_steps == [4, 8, 12, 16] and result.steps == 16  # 16 examples / batch 4 = 4 steps an epoch
    assert result.best_step == 8 and result.best_score == 3.0 and result.plateau_reached is True
    for key, value in model.state_dict().items():
        assert torch.equal(value, validate.seen[1][key])  # the weights scored 3.0, not the last ones
    assert not torch.equal(validate.seen[1]["weight"], validate.seen[3]["weight"])


def test_maximum_epochs_without_plateau_is_reported_as_not_reached(tmp_path):
    validate = _Scripted([float(i) for i in range(8)])
    result = train(_model(), _data(), _collate, _loss, _settings(plateau=PlateauSettings(patience=2)),
                   tmp_path / "ckpt", validate=validate)
    assert result.plateau_reached is False and result.best_step == 32 and len(result.valid_scores) == 8


def test_interrupted_plateau_run_resumes_to_the_same_end(tmp_path):
    scores = [1.0, 3.0, 2.0, 2.5]
    settings = _settings(plateau=PlateauSettings(patience=2))
    plain_model = _model()
    plain = train(plain_model, _data(), _collate, _loss, settings, tmp_path / "a", validate=_Scripted(scores))
    with pytest.raises(KeyboardInterrupt):
        train(_model(), _data(), _collate, _loss, settings, tmp_path / "b", validate=_Scripted(scores, fail_at=2))
    resumed_model = _model()
    again = _Scripted(scores[2:])
    resumed = train(resumed_model, _data(), _collate, _loss, settings, tmp_path / "b", validate=again)
    assert resumed.resumed_from == 8 and len(again.seen) == 2
    assert resumed.valid_scores == plain.valid_scores and resumed.best_step == plain.best_step == 8
    for key, value in plain_model.state_dict().items():
        assert torch.allclose(value, resumed_model.state_dict()[key], atol=1e-7)
    # a finished plateau run re-run with the same key trains nothing more and ends on the same weights
    finished_model = _model()
    finished = train(finished_model, _data(), _collate, _loss, settings, tmp_path / "b", validate=_Scripted([]))
    assert finished.steps == 16 and finished.best_step == 8
    assert torch.equal(finished_model.weight, resumed_model.weight)


def test_plateau_needs_a_validation_callback(tmp_path):
    with pytest.raises(ValueError, match="validate callback"):
        train(_model(), _data(), _collate, _loss, _settings(plateau=PlateauSettings()), tmp_path / "ckpt")

"""The pooled-teacher stage of the pruning replication: folds joined with their prefix, the floor read
from the pooled accuracy, and the paired difference against another pooled set on the same problems."""
from __future__ import annotations

import json

import pytest

from acbench.items import ItemLog, Outcomes
from acbench.results import write_metrics
from replications.dynamic_head_pruning_kd.stages import teacher_pool


def _teacher(root, name, correct, valid=60.0):
    folder = root / name
    folder.mkdir(parents=True)
    ids = tuple(str(i) for i in range(len(correct)))
    items = ItemLog()
    items.add_outcomes("test", Outcomes(ids, tuple(correct), tuple("0" for _ in ids)))
    write_metrics(folder, {"accuracy": 100 * sum(correct) / len(correct), "valid_accuracy": valid, "best_epoch": 3.0,
                           "epochs_trained": 10.0}, [], {}, items.write(folder))


def _run(root, name, stages, floor=70.0, versus=None):
    config = teacher_pool.Config(folds=[{"fold": k, "teacher_stage": s} for k, s in enumerate(stages)],
                                 floor=floor, versus=versus)
    out = root / name
    out.mkdir()
    return teacher_pool.run(config, out), out


def test_pooled_accuracy_weights_folds_by_size_and_decides_the_floor(tmp_path):
    _teacher(tmp_path, "a0", [True] * 8 + [False] * 2)              # 80% on 10 problems
    _teacher(tmp_path, "a1", [True] * 12 + [False] * 18)            # 40% on 30 problems
    metrics, out = _run(tmp_path, "pool_a", ["a0", "a1"], floor=50.0)
    assert metrics["accuracy"] == pytest.approx(50.0) and metrics["mean_of_folds"] == pytest.approx(60.0)
    assert metrics["accuracy.fold0"] == pytest.approx(80.0) and metrics["test_problems"] == 40
    assert metrics["floor_passed"] == 1.0 and metrics["accuracy_low"] < 50.0 < metrics["accuracy_high"]
    written = json.loads((out / "metrics.json").read_text())
    assert written["items"]["teacher"]["rows"] == 40
    metrics, _ = _run(tmp_path, "pool_b", ["a0", "a1"], floor=50.1)
    assert metrics["floor_passed"] == 0.0


def test_versus_is_the_paired_difference_and_needs_the_same_problems(tmp_path):
    _teacher(tmp_path, "a0", [True, False] * 10)
    _teacher(tmp_path, "a1", [True, False] * 10)
    _teacher(tmp_path, "b0", [True, True] * 10)                     # b wins every problem a misses on fold 0
    _teacher(tmp_path, "b1", [True, False] * 10)
    _run(tmp_path, "pool_a", ["a0", "a1"])
    metrics, out = _run(tmp_path, "pool_b", ["b0", "b1"], versus="pool_a")
    assert metrics["difference_vs"] == pytest.approx(25.0)
    assert metrics["difference_vs_low"] <= 25.0 <= metrics["difference_vs_high"]
    assert "pool_a" in (out / "table.md").read_text()
    _teacher(tmp_path, "c0", [True] * 5)                            # fewer problems on fold 0
    with pytest.raises(ValueError, match="other problems"):
        _run(tmp_path, "pool_c", ["c0", "b1"], versus="pool_a")

"""The encoder-pilot stage of the pruning replication: validation records choose (never the test split), the
pre-registered lead resolves the choice, and candidates must be validated on the same problems."""
from __future__ import annotations

import json

import pytest

from acbench.items import ItemLog, Outcomes
from acbench.results import write_metrics
from replications.dynamic_head_pruning_kd.stages import encoder_pilot


def _teacher(root, name, valid, test_accuracy, ids=None):
    folder = root / name
    folder.mkdir(parents=True)
    ids = ids or tuple(f"v{i}" for i in range(len(valid)))
    items = ItemLog()
    items.add_outcomes("valid", Outcomes(ids, tuple(valid), tuple("0" for _ in ids)))
    write_metrics(folder, {"accuracy": test_accuracy, "train_seconds": 600.0, "steps": 100},
                  [], {"valid_curve": {"steps": [50, 100], "accuracy": [10.0, 100 * sum(valid) / len(valid)]}},
                  items.write(folder))


def _run(root, resolve_points=6.0):
    config = encoder_pilot.Config(candidates=[{"name": "a", "stage": "pilot_a"}, {"name": "b", "stage": "pilot_b"}],
                                  resolve_points=resolve_points)
    out = root / "pilot"
    out.mkdir(exist_ok=True)
    return encoder_pilot.run(config, out), out


def test_validation_chooses_and_the_test_split_does_not(tmp_path):
    _teacher(tmp_path, "pilot_a", [True] * 30 + [False] * 70, test_accuracy=90.0)   # best on test, worse on valid
    _teacher(tmp_path, "pilot_b", [True] * 50 + [False] * 50, test_accuracy=10.0)
    metrics, out = _run(tmp_path)
    meta = json.loads((out / "metrics.json").read_text())["meta"]
    assert meta["chosen"] == "b" and meta["runner_up"] == "a"
    assert metrics["lead"] == pytest.approx(20.0) and metrics["lead_low"] > 0 and metrics["resolved"] == 1.0
    assert metrics["test_accuracy.a"] == 90.0 and metrics["valid_accuracy.b"] == pytest.approx(50.0)
    assert "Chosen: **b**" in (out / "table.md").read_text()


def test_a_lead_below_the_preregistered_points_is_not_resolved(tmp_path):
    _teacher(tmp_path, "pilot_a", [True] * 52 + [False] * 48, test_accuracy=50.0)
    _teacher(tmp_path, "pilot_b", [True] * 50 + [False] * 50, test_accuracy=50.0)
    metrics, out = _run(tmp_path)
    assert metrics["lead"] == pytest.approx(2.0) and metrics["resolved"] == 0.0
    assert "not resolved" in (out / "table.md").read_text()
    metrics, _ = _run(tmp_path, resolve_points=2.0)
    assert metrics["resolved"] == 1.0


def test_candidates_validated_on_other_problems_are_refused(tmp_path):
    _teacher(tmp_path, "pilot_a", [True, False], test_accuracy=50.0)
    _teacher(tmp_path, "pilot_b", [True, False], test_accuracy=50.0, ids=("x", "y"))
    with pytest.raises(ValueError, match="other problems"):
        _run(tmp_path)


def test_the_curve_plot_is_drawn(tmp_path):
    _teacher(tmp_path, "pilot_a", [True, False], test_accuracy=50.0)
    _teacher(tmp_path, "pilot_b", [True, True], test_accuracy=60.0)
    metrics, out = _run(tmp_path)
    config = encoder_pilot.Config(candidates=[{"name": "a", "stage": "pilot_a"}, {"name": "b", "stage": "pilot_b"}])
    [path] = encoder_pilot.plot(config, metrics, [], out)
    assert path.name == "pilot_curves.png" and path.stat().st_size > 1000


def test_candidate_names_must_differ():
    with pytest.raises(ValueError, match="repeat"):
        encoder_pilot.Config(candidates=[{"name": "a", "stage": "x"}, {"name": "a", "stage": "y"}])

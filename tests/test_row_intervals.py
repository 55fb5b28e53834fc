"""The row-interval stage of the pruning replication: each row's accuracy with its interval, the paired gap
from the reference row, folds resampled when the ids carry them, and records over other items refused."""
from __future__ import annotations

import pytest

from acbench.items import ItemLog, Outcomes
from acbench.results import write_metrics
from replications.dynamic_head_pruning_kd.stages import row_intervals


def _stage(root, name, records: dict[str, list[bool]], ids=None):
    folder = root / name
    folder.mkdir(parents=True)
    items = ItemLog()
    for record, correct in records.items():
        own = tuple(ids) if ids is not None else tuple(str(i) for i in range(len(correct)))
        items.add_outcomes(record, Outcomes(own, tuple(correct), tuple("0" for _ in own)))
    write_metrics(folder, {"n": 1.0}, [], {}, items.write(folder))


def _run(root, conditions, reference="teacher", name="rows"):
    config = row_intervals.Config(reference=reference,
                                  conditions=[{"name": n, "stage": s, "record": r} for n, s, r in conditions])
    out = root / name
    out.mkdir()
    return row_intervals.run(config, out), out


def test_each_row_gets_its_accuracy_and_the_paired_gap_from_the_reference(tmp_path):
    teacher = [True] * 30 + [False] * 10                       # 75%
    pruned = [True] * 20 + [False] * 20                        # 50%: loses 10 of the teacher's problems
    _stage(tmp_path, "teach", {"test": teacher})
    _stage(tmp_path, "prune", {"prune@0.30": pruned})
    metrics, out = _run(tmp_path, [("teacher", "teach", "test"), ("prune_only", "prune", "prune@0.30")])
    assert metrics["teacher.accuracy"] == pytest.approx(75.0) and metrics["prune_only.accuracy"] == pytest.approx(50.0)
    assert metrics["prune_only.gap_pts"] == pytest.approx(25.0)
    assert metrics["prune_only.gap_pts_low"] > 0 and metrics["prune_only.gap_pts_high"] >= 25.0
    assert metrics["teacher.accuracy_low"] < 75.0 < metrics["teacher.accuracy_high"]
    assert "teacher.gap_pts" not in metrics and metrics["test_items"] == 40
    # paired: the gap's interval is narrower than an unpaired one would be (the rows share 30 outcomes)
    width = metrics["prune_only.gap_pts_high"] - metrics["prune_only.gap_pts_low"]
    assert width < (metrics["teacher.accuracy_high"] - metrics["teacher.accuracy_low"]) * 2
    assert "prune@0.30" in (out / "table.md").read_text()


def test_an_identical_row_has_a_zero_gap_and_a_zero_width_interval(tmp_path):
    correct = [True, False, True, True] * 10
    _stage(tmp_path, "a", {"test": correct, "kd@s0": correct})
    metrics, _ = _run(tmp_path, [("teacher", "a", "test"), ("kd", "a", "kd@s0")])
    assert metrics["kd.gap_pts"] == 0.0 and metrics["kd.gap_pts_low"] == 0.0 and metrics["kd.gap_pts_high"] == 0.0


def test_fold_prefixed_ids_resample_folds_and_widen_the_interval(tmp_path):
    # fold 0 all right, fold 1 all wrong: item resampling alone sees a 50% that hardly moves,
    # resampling the folds sees 0% or 100% as often as 50%.
    ids = [f"fold{k}/{i}" for k in (0, 1) for i in range(50)]
    correct = [True] * 50 + [False] * 50
    _stage(tmp_path, "pooled", {"teacher": correct, "kd@s0": correct}, ids=ids)
    _stage(tmp_path, "flat", {"teacher": correct, "kd@s0": correct})
    folded, _ = _run(tmp_path, [("teacher", "pooled", "teacher"), ("kd", "pooled", "kd@s0")], name="r1")
    flat, _ = _run(tmp_path, [("teacher", "flat", "teacher"), ("kd", "flat", "kd@s0")], name="r2")
    assert folded["teacher.accuracy"] == flat["teacher.accuracy"] == pytest.approx(50.0)
    assert folded["teacher.accuracy_low"] == pytest.approx(0.0) and folded["teacher.accuracy_high"] == pytest.approx(100.0)
    assert flat["teacher.accuracy_low"] > 35.0 and flat["teacher.accuracy_high"] < 65.0


def test_a_record_over_other_items_is_refused(tmp_path):
    _stage(tmp_path, "a", {"test": [True] * 10})
    _stage(tmp_path, "b", {"kd@s0": [True] * 9})
    with pytest.raises(ValueError, match="other items"):
        _run(tmp_path, [("teacher", "a", "test"), ("kd", "b", "kd@s0")])


def test_the_config_needs_distinct_names_and_a_reference_among_them():
    with pytest.raises(ValueError, match="repeat"):
        row_intervals.Config(reference="t", conditions=[{"name": "t", "stage": "a", "record": "x"},
                                                        {"name": "t", "stage": "b", "record": "y"}])
    with pytest.raises(ValueError, match="reference"):
        row_intervals.Config(reference="z", conditions=[{"name": "t", "stage": "a", "record": "x"},
                                                        {"name": "u", "stage": "b", "record": "y"}])

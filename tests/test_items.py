"""Per-item records: deterministic files referenced by digest, and written by real stages at smoke."""
import hashlib
import json

import pytest

from acbench.config import load_replication
from acbench.data.errors import ENV_ROOT
from acbench.experiments import get_experiment
from acbench.items import ItemLog, ItemsError, Outcomes, read_records, runs_of
from data_fixtures import data_root  # noqa: F401  (fixture)

OUTCOMES = Outcomes(("a", "b", "c"), (True, False, True), ("+ N0 N1", "N0", "- N1 N0"))


def test_records_are_deterministic_bytes_referenced_by_digest(tmp_path):
    first, second = ItemLog(), ItemLog()
    for log in (first, second):
        log.add_outcomes("kd@s0", OUTCOMES)
        log.add_timings("latency.b1@0.30", [0.25, 0.5])
    index = first.write(tmp_path / "one")
    assert index == second.write(tmp_path / "two")
    data = (tmp_path / "one" / "items" / "kd@s0.csv").read_bytes()
    assert data == b"item,correct,prediction\na,1,+ N0 N1\nb,0,N0\nc,1,- N1 N0\n"
    assert index["kd@s0"] == {"file": "items/kd@s0.csv", "sha256": hashlib.sha256(data).hexdigest(), "rows": 3}
    assert [r["seconds"] for r in read_records(tmp_path / "one", index, "latency.b1@0.30")] == ["0.25", "0.5"]
    assert runs_of(index, "kd") == {0: "kd@s0"}
    assert OUTCOMES.accuracy == pytest.approx(200 / 3)


def test_a_rerun_removes_records_it_no_longer_writes(tmp_path):
    log = ItemLog()
    log.add_outcomes("old@s0", OUTCOMES)
    log.write(tmp_path)
    log = ItemLog()
    log.add_outcomes("new@s0", OUTCOMES)
    index = log.write(tmp_path)
    assert sorted(p.name for p in (tmp_path / "items").iterdir()) == ["new@s0.csv"]
    with pytest.raises(ItemsError, match="lists no per-item record 'old@s0'"):
        read_records(tmp_path, index, "old@s0")


def _run_smoke_stage(replication, stage, out_dir, monkeypatch, root):
    monkeypatch.setenv(ENV_ROOT, str(root))
    rep = load_replication(replication)
    get_experiment(rep.name, rep.params.stages[stage]).run(rep.stage_config(stage, "smoke"), out_dir)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    for entry in metrics["items"].values():  # every record is there and matches its digest
        assert hashlib.sha256((out_dir / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    return metrics


def test_mwp_teacher_writes_per_problem_records_at_smoke(tmp_path, monkeypatch, data_root):  # noqa: F811
    metrics = _run_smoke_stage("dynamic_head_pruning_kd", "asdiv_teacher", tmp_path / "asdiv_teacher",
                               monkeypatch, data_root)
    assert sorted(metrics["items"]) == ["test", "train_subset", "valid"]
    valid = {r["item"] for r in read_records(tmp_path / "asdiv_teacher", metrics["items"], "valid")}
    trained = {r["item"] for r in read_records(tmp_path / "asdiv_teacher", metrics["items"], "train_subset")}
    assert len(valid) == metrics["metrics"]["valid_problems"] == 8 and not valid & trained  # held out of training
    rows = read_records(tmp_path / "asdiv_teacher", metrics["items"], "test")
    assert len(rows) == metrics["metrics"]["test_problems"] == 16
    assert 100 * sum(r["correct"] == "1" for r in rows) / len(rows) == pytest.approx(metrics["metrics"]["accuracy"])
    assert all(r["item"] and r["prediction"] for r in rows)


def test_cifar_teacher_writes_per_image_records_at_smoke(tmp_path, monkeypatch, data_root):  # noqa: F811
    metrics = _run_smoke_stage("uhkd", "teacher", tmp_path / "teacher", monkeypatch, data_root)
    assert sorted(metrics["items"]) == ["before", "test"]
    rows = read_records(tmp_path / "teacher", metrics["items"], "test")
    assert [r["item"] for r in rows] == [str(i) for i in range(metrics["metrics"]["test_images"])]
    assert 100 * sum(r["correct"] == "1" for r in rows) / len(rows) == pytest.approx(metrics["metrics"]["accuracy"])
    assert all(0 <= int(r["prediction"]) < 10 for r in rows)

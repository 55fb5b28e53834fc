"""The DVC pipeline is written from the replication folders; the check names what differs."""
import copy
import shutil
from pathlib import Path

import pytest
import yaml

from acbench import pipeline
from acbench.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built():
    return pipeline.build()


def test_committed_pipeline_is_what_the_replication_folders_make():
    assert pipeline.check() == []


def test_every_replication_stage_is_run_by_exactly_one_dvc_stage(built):
    from acbench.config import list_replications, load_replication

    for name in list_replications():
        rep = load_replication(name)
        runs = [cmd for stage, cmd in ((s, built["stages"][s]["cmd"]) for s in built["stages"]) if
                f"acbench run {name} " in cmd]
        ran = [flag.split()[1] for cmd in runs for flag in cmd.split("--")[1:] if flag.startswith("stage ")]
        assert sorted(ran) == sorted(rep.params.stages)


def test_deps_hold_the_import_closure_datasets_and_upstream_outputs(built):
    students = built["stages"]["uhkd-students"]
    assert {"methods/uhkd.py", "methods/dkd.py", "acbench/experiments/cifar/kd.py", "acbench/training/loop.py",
            "datasets/cifar10_jpeg.py", "datasets/cifar10_jpeg.yaml",
            "checkpoints/${profile}/uhkd/teacher", "results/${profile}/uhkd/teacher/metrics.json"} <= set(students["deps"])
    asdiv = built["stages"]["dynamic_head_pruning_kd-students_asdiv"]["deps"]
    assert "datasets/asdiv_a.yaml" in asdiv  # read through the teacher's data settings
    assert {"replications/dynamic_head_pruning_kd/stages/student.py", "acbench/experiments/mwp/teacher.py",
            "methods/dynamic_pruning.py"} <= set(asdiv)
    assert "datasets/math23k.yaml" not in asdiv and "methods/uhkd.py" not in asdiv
    summary = built["stages"]["attention_distillation-summary"]["deps"]
    assert "results/${profile}/dynamic_head_pruning_kd/asdiv_r30_alignment/metrics.json" in summary


def test_committed_results_persist_so_a_failed_stage_keeps_them(built):
    for name, stage in built["stages"].items():
        for entry in stage.get("metrics", []) + stage.get("outs", []) + stage.get("plots", []):
            (path, options), = entry.items()
            assert options.get("persist") is True, (name, path)


def test_report_depends_on_every_published_yaml_and_stage_result(built):
    report = built["stages"]["report"]
    for rep in ("dynamic_head_pruning_kd", "attention_distillation", "uhkd"):
        assert f"replications/{rep}/published.yaml" in report["deps"]
    metrics = [m for stage in built["stages"].values() for entry in stage.get("metrics", []) for m in entry]
    assert set(metrics) <= set(report["deps"])


def test_check_names_a_removed_dep_and_a_missing_stage(built):
    committed = copy.deepcopy(built)
    committed["stages"]["uhkd-students"]["deps"].remove("methods/uhkd.py")
    del committed["stages"]["uhkd-summary"]
    problems = pipeline.differences(committed, built)
    assert "stage 'uhkd-summary' is missing" in problems
    assert any(p.startswith("stage 'uhkd-students': deps: missing methods/uhkd.py") for p in problems)
    assert pipeline.differences(built, built) == []


def test_pipeline_check_command_exits_1_naming_the_stage(tmp_path, monkeypatch, capsys):
    for folder in ("replications", "datasets"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    assert main(["pipeline"]) == 0
    assert main(["pipeline", "--check"]) == 0
    data = yaml.safe_load((tmp_path / "dvc.yaml").read_text())
    data["stages"]["uhkd-students"]["deps"].remove("methods/uhkd.py")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    capsys.readouterr()
    assert main(["pipeline", "--check"]) == 1
    err = capsys.readouterr().err
    assert "stage 'uhkd-students': deps: missing methods/uhkd.py" in err
    assert "run `acbench pipeline`" in err

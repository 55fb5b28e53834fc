"""The UHKD replication's paper profile (issue 14, item 6): OFA-KD's CIFAR-100 pairs as timm builds them at
224 × 224, a released teacher fetched and checked, and one distillation step of every method on them.

No weights are downloaded: the models are built with random weights (the release teacher's file is a
local stand-in served by a file:// URL)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from acbench.config import load_replication
from acbench.experiments.cifar import teacher as teacher_stage
from acbench.experiments.cifar.common import Teacher, build_student, load_teacher, save_teacher, student_stages
from acbench.experiments.cifar.kd import Distillation
from acbench.vision.students import features_and_logits
from acbench.vision.timm_models import ResizedTimm, TimmSpec, stage_indices, timm_model

CLASSES = 100


@pytest.fixture(scope="module")
def paper():
    replication = load_replication("uhkd")
    return {stage: replication.stage_config(stage, "paper") for stage in ("teacher", "vit", "mixer", "resnet20")}


@pytest.fixture(scope="module")
def teacher(paper):
    torch.manual_seed(0)
    return Teacher(timm_model(paper["teacher"].model, CLASSES))


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 32, 32, generator=g), torch.tensor([3, 97])


def test_paper_profile_names_ofa_kd_cifar100_models_at_their_input_size(paper):
    assert paper["teacher"].data.dataset == "cifar100" and paper["teacher"].init == "release"
    assert paper["teacher"].release_url.endswith(f"/checkpoint-cifar100/{paper['teacher'].model.name}_cifar100.pth")
    for stage in ("vit", "mixer", "resnet20"):
        config = paper[stage]
        assert isinstance(config.student, TimmSpec) and config.data.dataset == "cifar100"
        assert not config.cache_teacher  # a fresh view per epoch over 300 epochs: the teacher runs per batch
        assert config.train.epochs == 300 and config.train.batch_size == 128 and config.train.max_grad_norm == 5.0
        assert config.label_smoothing == 0.1


@pytest.mark.parametrize("name, levels, deepest", [
    ("resnet18", [1, 2, 3, 4], (512, 7, 7)),                     # hierarchical: the last four of five levels
    ("convnext_tiny", [0, 1, 2, 3], (768, 7, 7)),
    ("deit_tiny_patch16_224", [2, 5, 8, 11], (192, 14, 14)),     # isotropic: blocks 3, 6, 9, 12
    ("resmlp_12_224", [2, 5, 8, 11], (384, 14, 14)),
])
def test_stage_maps_of_a_cifar_batch_at_224(name, levels, deepest, batch):
    torch.manual_seed(0)
    model = timm_model(TimmSpec(name=name), CLASSES).eval()
    assert stage_indices(model.model) == levels and model.img_size == 224
    images, _ = batch
    with torch.no_grad():
        maps, logits = features_and_logits(model, images)
        direct = model(images)
    assert len(maps) == 4 and all(m.dim() == 4 and m.shape[0] == 2 for m in maps)
    assert tuple(maps[-1].shape[1:]) == deepest
    torch.testing.assert_close(logits, direct)  # the features come from the ordinary forward pass
    assert tuple(logits.shape) == (2, CLASSES)


def test_resize_is_the_identity_at_the_models_own_size():
    model = timm_model(TimmSpec(name="resnet18"), 10)
    assert isinstance(model, ResizedTimm)
    x = torch.randn(1, 3, 224, 224)
    assert model.resize(x) is x
    assert model.resize(torch.randn(1, 3, 32, 32)).shape[-2:] == (224, 224)


STEPS = [("resnet20", kind) for kind in ("no_kd", "kd", "dkd", "fitnet", "ofa", "uhkd", "uhkd_phase", "uhkd_today")] + [
    ("vit", "uhkd"), ("vit", "ofa"), ("mixer", "uhkd"), ("mixer", "fitnet")]


@pytest.mark.parametrize("stage, method_name", STEPS)
def test_one_distillation_step_of_each_paper_method(paper, teacher, batch, stage, method_name):
    config = paper[stage]
    method = next(m for m in config.methods if m.name == method_name)
    images, labels = batch
    t_feats, t_logits = teacher.features(images)
    torch.manual_seed(0)
    student = build_student(config.student, CLASSES)
    model = Distillation(method, student, student_stages(config.student), [tuple(f.shape[1:]) for f in t_feats],
                         CLASSES, images, label_smoothing=config.label_smoothing)
    model.calibrate(images, labels, t_feats, t_logits)
    loss, logs = model.loss(images, labels, t_feats, t_logits, progress=0.5)
    assert loss.dim() == 0 and torch.isfinite(loss) and "ce" in logs
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in teacher.model.parameters())


def test_a_timm_teacher_survives_save_and_load(tmp_path, batch):
    torch.manual_seed(0)
    spec = TimmSpec(name="resnet18")
    model = timm_model(spec, CLASSES).eval()
    save_teacher(tmp_path, model, {"depth": 56, "num_classes": CLASSES, "model": spec.model_dump()})
    loaded = load_teacher(tmp_path)
    images, _ = batch
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(images)[1], model(images))


def test_release_teacher_is_fetched_once_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("ACBENCH_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "convnext_tiny_cifar100.pth"
    source.write_bytes(b"released weights")
    sha = hashlib.sha256(b"released weights").hexdigest()
    path, actual = teacher_stage.fetch_release(source.as_uri(), None)
    assert actual == sha and path.read_bytes() == b"released weights" and path.parent.parent == tmp_path / "cache"
    source.unlink()  # a second call reads the cached copy
    assert teacher_stage.fetch_release(source.as_uri(), sha) == (path, sha)
    with pytest.raises(teacher_stage.ReleaseMismatch, match="is not the configured"):
        teacher_stage.fetch_release(source.as_uri(), "0" * 64)


@pytest.mark.parametrize("broken, message", [
    ({"init": "release"}, "needs model"),
    ({"init": "scratch", "train": None}, "set train"),
    ({"init": "checkpoint", "model": {"name": "resnet18"}}, "drop model"),
])
def test_teacher_config_rejects_inconsistent_inits(broken, message):
    base = {"train": {"epochs": 1, "batch_size": 8, "lr": 1e-3}}
    with pytest.raises(ValueError, match=message):
        teacher_stage.Config.model_validate({**base, **broken})

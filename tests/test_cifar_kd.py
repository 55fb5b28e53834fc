"""The CIFAR distillation experiment's pieces: every method's loss, what it trains, the teacher cache."""
from __future__ import annotations

import pytest
import torch

from acbench.experiments.cifar.common import StudentSpec, Teacher, build_student, student_stages
from acbench.experiments.cifar.kd import Distillation, Method, downsample
from acbench.experiments.cifar.teacher_outputs import TeacherCache
from acbench.vision.resnet_cifar import resnet_cifar

KINDS = ["none", "kd", "dkd", "fitnet", "ofa", "uhkd"]


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return Teacher(resnet_cifar(8))


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(6) % 10


@pytest.mark.parametrize("student_kind", ["vit", "mixer", "resnet"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_method_trains_the_student_and_its_own_parts_only(teacher, data, student_kind, kind):
    spec = StudentSpec(kind=student_kind, depth=3 if student_kind != "resnet" else 8, dim=16, heads=2)
    torch.manual_seed(0)
    student = build_student(spec, 10)
    cache = TeacherCache(teacher, data, views=1, augmented=False)
    model = Distillation(Method(name="m", kind=kind), student, student_stages(spec), cache.shapes, 10,
                         cache.batch(0, torch.arange(2))[0])
    images, labels, t_feats, t_logits = cache.batch(0, torch.arange(4))
    loss, logs = model.loss(images, labels, t_feats, t_logits, progress=0.5)
    assert loss.dim() == 0 and torch.isfinite(loss) and "ce" in logs
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in teacher.model.parameters())
    extra = [p for name, p in model.named_parameters() if not name.startswith("student.")]
    assert (len(extra) > 0) == (kind in ("fitnet", "ofa", "uhkd"))


def test_kd_and_uhkd_distillation_terms_vanish_when_the_teacher_is_the_student(data):
    """With teacher outputs taken from the student itself, the KL and feature terms vanish."""
    torch.manual_seed(0)
    student = resnet_cifar(8).eval()
    images = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        feats, logits = student.features_and_logits(images)
    spec = StudentSpec(kind="resnet", depth=8)
    for kind in ("kd", "uhkd"):
        model = Distillation(Method(name="m", kind=kind, **({"crop": 4} if kind == "uhkd" else {})), student, student_stages(spec),
                             [tuple(f.shape[1:]) for f in feats], 10, images[:2]).eval()
        if kind == "uhkd":  # an identity alignment: the 1x1 conv passes each channel through
            for proj in model.uhkd.align.projectors:
                conv = proj[0]
                torch.nn.init.zeros_(conv.weight)
                conv.weight.data[:, :, 0, 0] = torch.eye(conv.weight.shape[0])
                proj[1].eval()
                proj[1].reset_parameters()
                proj[1].running_var.fill_(1.0 - proj[1].eps)
                proj[2] = torch.nn.Identity()
        loss, logs = model.loss(images, labels, feats, logits, 1.0)
        assert logs["kd"] == pytest.approx(0.0, abs=1e-6)
        if kind == "uhkd":
            assert logs["feature"] == pytest.approx(0.0, abs=1e-5)


def test_teacher_cache_views_are_fixed_augmentations_with_matching_outputs(teacher, data):
    cache = TeacherCache(teacher, data, views=2, augmented=True)
    assert not torch.equal(cache.view(0), cache.view(1))
    again = TeacherCache(teacher, data, views=2, augmented=True)
    assert torch.equal(cache.view(1), again.view(1))
    index = torch.tensor([3, 1])
    images, labels, feats, logits = cache.batch(1, index)
    direct_feats, direct_logits = teacher.features(images)
    assert torch.allclose(logits, direct_logits, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(feats, direct_feats))
    assert torch.allclose(cache.batch(1, index, "logits")[3], direct_logits, atol=1e-5)
    assert labels.tolist() == [3, 1]
    assert torch.equal(cache.batch(3, index)[0], images)  # epoch e uses view e mod views
    assert not torch.equal(cache.batch(2, index)[0], images)


def test_downsample_keeps_short_curves_and_averages_windows():
    assert downsample([1.0, 2.0], 100) == [1.0, 2.0]
    assert downsample([float(i) for i in range(10)], 5) == [0.5, 2.5, 4.5, 6.5, 8.5]

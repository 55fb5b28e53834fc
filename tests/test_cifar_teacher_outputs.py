"""Teacher outputs cached once per augmented view: the cached losses equal the uncached ones, the disk
cache is reused only for the same teacher, and the validation split is a seeded stratified hold-out."""
from __future__ import annotations

import pytest
import torch

from acbench.experiments.cifar.common import CifarData, StudentSpec, Teacher, build_student, student_stages
from acbench.experiments.cifar.kd import Distillation, Method, teacher_target
from acbench.experiments.cifar.teacher_outputs import TeacherCache
from acbench.vision.resnet_cifar import resnet_cifar

METHODS = [{"kind": "none"}, {"kind": "kd", "temperature": 4.0}, {"kind": "dkd"}, {"kind": "fitnet"}, {"kind": "ofa"},
           {"kind": "uhkd"}, {"kind": "uhkd", "freq_mode": "realimag"},
           # the replication's readings: scales and weight calibrated on a fixed batch before training
           {"kind": "uhkd", "spectrum_norm": "teacher_bin_rms", "feature_weight_rule": "ce_at_init"},
           {"kind": "uhkd", "freq_mode": "realimag", "spectrum_norm": "teacher_bin_rms", "feature_weight_rule": "ce_at_init"}]


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    model = resnet_cifar(8)
    for m in model.modules():  # non-trivial BN statistics, so the teacher's features are not all alike
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return Teacher(model)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(12) % 10


def _model(method: Method, cache: TeacherCache) -> Distillation:
    torch.manual_seed(0)
    spec = StudentSpec(kind="mixer", depth=3, dim=16)
    return Distillation(method, build_student(spec, 10), student_stages(spec), cache.shapes, 10,
                        cache.batch(0, torch.arange(2))[0]).eval()


@pytest.mark.parametrize("entry", METHODS, ids=lambda e: "-".join(str(v) for v in e.values()))
def test_cached_and_uncached_losses_agree_on_a_fixed_batch(teacher, data, entry):
    method = Method(name="m", **entry)
    cache = TeacherCache(teacher, data, views=2, augmented=True)
    plain, cached = _model(method, cache), _model(method, cache)
    target = teacher_target(method, cached, cache)
    assert target == {"none": "logits", "kd": "logits", "dkd": "logits", "ofa": "logits",
                      "fitnet": None}.get(method.kind, target)
    if method.kind == "uhkd":  # the spectra are cached, not raw maps
        assert target is not None and target.startswith("uhkd-")
    if method.kind == "uhkd" and method.params.spectrum_norm != "none":  # calibrated on cached spectra as on raw maps
        everything = torch.arange(len(data[1]))
        want_cal = plain.calibrate(*cache.batch(0, everything))
        assert cached.calibrate(*cache.batch(0, everything, target)) == pytest.approx(want_cal, rel=1e-5)
        assert want_cal["feature_weight"] != 1.0  # ce_at_init really set a weight
    index = torch.tensor([7, 2, 11, 4, 0, 9])
    for view in (0, 1):
        images, labels, feats, logits = cache.batch(view, index)
        c_images, c_labels, c_feats, c_logits = cache.batch(view, index, target)
        assert torch.equal(images, c_images) and torch.equal(labels, c_labels)
        if method.kind == "uhkd":
            assert sum(f[0].numel() for f in c_feats) < sum(f[0].numel() for f in feats) / 4
        want, want_logs = plain.loss(images, labels, feats, logits, 0.3)
        got, got_logs = cached.loss(c_images, c_labels, c_feats, c_logits, 0.3)
        assert got.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-6)
        assert got_logs == pytest.approx(want_logs, rel=1e-5, abs=1e-6)
    # the same weights: the pass-through holds no state
    assert plain.state_dict().keys() == cached.state_dict().keys()


def test_disk_cache_runs_the_teacher_once_per_view_and_is_keyed_by_the_teacher(teacher, data, tmp_path):
    method = Method(name="m", kind="uhkd")
    first = TeacherCache(teacher, data, views=2, augmented=True, cache_dir=tmp_path)
    target = teacher_target(method, _model(method, first), first)
    index = torch.tensor([1, 5])
    before = first.teacher_images
    a = first.batch(1, index, target)
    assert first.teacher_images - before == len(data[1])  # one pass over view 1, all targets together
    first.batch(1, index, "logits")
    first.batch(3, index, target)  # epoch 3 reuses view 1
    assert first.teacher_images - before == len(data[1])
    files = sorted(p.name for p in (tmp_path / "cifar_teacher_outputs").glob("*.safetensors"))
    assert len(files) == 2 and all("-v1-" in f for f in files)

    again = TeacherCache(teacher, data, views=2, augmented=True, cache_dir=tmp_path)
    target_again = teacher_target(method, _model(method, again), again)
    before = again.teacher_images
    b = again.batch(1, index, target_again)
    assert again.teacher_images == before  # read from disk
    assert torch.equal(a[3], b[3]) and all(torch.equal(x, y) for x, y in zip(a[2], b[2]))

    other = Teacher(resnet_cifar(8))
    changed = TeacherCache(other, data, views=2, augmented=True, cache_dir=tmp_path)
    changed.batch(1, index, "logits")
    assert changed.teacher_images == len(data[1])  # a different teacher never reads the old files


def test_a_damaged_cache_file_is_refused(teacher, data, tmp_path):
    cache = TeacherCache(teacher, data, views=1, augmented=False, cache_dir=tmp_path)
    cache.batch(0, torch.tensor([0]), "logits")
    (path,) = (tmp_path / "cifar_teacher_outputs").glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    fresh = TeacherCache(teacher, data, views=1, augmented=False, cache_dir=tmp_path)
    with pytest.raises(Exception, match="delete"):
        fresh.batch(0, torch.tensor([0]), "logits")


def test_validation_split_is_a_seeded_stratified_hold_out_disjoint_from_training():
    labels = torch.arange(1000) % 10
    data = CifarData(valid_size=100, valid_seed=3)
    valid, train = data.indices("valid", labels), data.indices("train", labels)
    assert len(valid) == 100 and len(train) == 900
    assert not set(valid.tolist()) & set(train.tolist())
    assert torch.bincount(labels[valid], minlength=10).tolist() == [10] * 10
    assert torch.equal(valid, CifarData(valid_size=100, valid_seed=3).indices("valid", labels))
    assert not torch.equal(valid, CifarData(valid_size=100, valid_seed=4).indices("valid", labels))
    limited = CifarData(valid_size=100, valid_seed=3, train_limit=50).indices("train", labels)
    assert len(limited) == 50 and not set(limited.tolist()) & set(valid.tolist())
    assert torch.bincount(labels[limited], minlength=10).tolist() == [5] * 10
    # without a validation split the training subset is the one drawn before this split existed
    assert torch.equal(CifarData(train_limit=50).indices("train", labels),
                       CifarData(train_limit=50, valid_size=None).indices("train", labels))
    with pytest.raises(ValueError, match="valid_size"):
        CifarData().indices("valid", labels)

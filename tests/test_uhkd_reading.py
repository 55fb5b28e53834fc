"""The pre-registered UHKD reading and the OFA-KD comparator (issue 14): per-bin spectrum scaling, the
feature weight set by code on a fixed batch, OFA-KD's official-code loss, one label-smoothed CE."""
from __future__ import annotations

import methods  # noqa: F401  (torchvision shim first)
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from acbench.experiments.cifar.common import StudentSpec, Teacher, build_student, student_stages
from acbench.experiments.cifar.kd import Distillation, Method, TeacherCache
from acbench.vision.resnet_cifar import resnet_cifar
from acbench.vision.students import features_and_logits
from methods.ofa import ofa_loss, ofa_total
from methods.uhkd import bin_rms, bin_shares

CHOSEN = dict(spectrum_norm="teacher_bin_rms", feature_weight_rule="ce_at_init")
TODAY = dict(spectrum_norm="none", feature_weight_rule="fixed")


@pytest.fixture(scope="module")
def cache():
    torch.manual_seed(0)
    teacher = Teacher(resnet_cifar(8))
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=g)
    return TeacherCache(teacher, (images, torch.arange(32) % 10), views=1, augmented=False)


def build(cache, kind="uhkd", student="vit", label_smoothing=0.1, seed=0, **params):
    spec = StudentSpec(kind=student, depth=3 if student != "resnet" else 8, dim=16, heads=2)
    torch.manual_seed(seed)
    model = Distillation(Method(name="m", kind=kind, temperature=1.0, **params), build_student(spec, 10),
                         student_stages(spec), cache.shapes, 10, cache.batch(0, torch.arange(2))[0], label_smoothing)
    return model


def representations(model, batch):
    with torch.no_grad():
        feats, _ = features_and_logits(model.student, batch[0], model.stages)
        return model.uhkd.representations(feats, batch[2])


@pytest.mark.parametrize("student", ["vit", "mixer", "resnet"])
def test_chosen_reading_is_of_the_order_of_ce_and_no_bin_dominates(cache, student):
    batch = cache.batch(0, torch.arange(32))
    raw = build(cache, student=student, **TODAY)
    raw.calibrate(*batch)
    raw_max = bin_shares(*representations(raw, batch)).max()
    assert raw_max > 0.3  # the first reading: one (DC) bin of 48 carries a third or more
    model = build(cache, student=student, **CHOSEN)
    got = model.calibrate(*batch)
    shares = bin_shares(*representations(model, batch))
    assert shares.sum() == pytest.approx(1.0, rel=1e-5)
    assert shares.max() < 0.2 and shares.sum((1, 2)).max() < 0.7  # no bin, no stage carries most of it
    assert 0.1 < got["feature"] / got["ce"] < 10  # the unweighted normalised term: the order of CE
    _, logs = model.loss(*batch, progress=0.0)  # on the calibration batch the weighted term equals CE
    assert got["feature_weight"] * logs["feature"] == pytest.approx(logs["ce"], rel=1e-3)


def test_teacher_bins_have_unit_rms_after_scaling_and_phase_shares_one_scale(cache):
    batch = cache.batch(0, torch.arange(32))
    for mode in ("amplitude", "realimag"):
        model = build(cache, freq_mode=mode, **CHOSEN)
        model.calibrate(*batch)
        _, t = representations(model, batch)
        for level in t:
            assert torch.allclose(level.pow(2).mean((0, 1)).sqrt(), torch.ones(4, 4), atol=1e-4)
    x = torch.randn(5, 6, 4, 4)
    assert torch.allclose(bin_rms(x), x.pow(2).mean((0, 1)).sqrt())


def test_weight_rule_is_deterministic_and_calibration_leaves_the_student_unchanged(cache):
    batch = cache.batch(0, torch.arange(32))
    first, second = build(cache, student="resnet", **CHOSEN), build(cache, student="resnet", **CHOSEN)
    before = {k: v.clone() for k, v in first.student.state_dict().items()}
    a, b = first.calibrate(*batch), second.calibrate(*batch)
    assert a == b and a["feature_weight"] > 0
    assert torch.equal(first.uhkd.calibration_weight, second.uhkd.calibration_weight)
    assert all(torch.equal(v, first.student.state_dict()[k]) for k, v in before.items())  # BN statistics restored
    other_seed = build(cache, student="resnet", seed=1, **CHOSEN).calibrate(*batch)
    assert other_seed["feature_weight"] != a["feature_weight"]  # computed from the initialised student, not a constant
    assert "calibration_weight" in dict(first.uhkd.named_buffers())  # saved with checkpoints: a resume keeps it


def test_the_first_reading_needs_no_calibration_and_the_chosen_one_refuses_to_run_without(cache):
    batch = cache.batch(0, torch.arange(8))
    loss, _ = build(cache, **TODAY).loss(*batch, progress=0.0)
    assert torch.isfinite(loss)
    with pytest.raises(RuntimeError, match="calibrate"):
        build(cache, **CHOSEN).loss(*batch, progress=0.0)
    assert build(cache, kind="kd").calibrate(*batch) == {}


def test_reading_settings_are_validated():
    with pytest.raises(ValidationError, match="spectrum_norm"):
        Method(name="u", kind="uhkd", spectrum_norm="dc")
    with pytest.raises(ValidationError, match="form"):
        Method(name="o", kind="ofa", form="mine")
    with pytest.raises(ValidationError, match="max_seeds"):  # seeds per method: the stage's seed_overrides
        Method(name="u", kind="uhkd", max_seeds=1, **CHOSEN)


def test_one_label_smoothed_ce_for_every_method(cache):
    batch = cache.batch(0, torch.arange(8))
    for kind in ("none", "kd", "ofa"):
        model = build(cache, kind=kind) if kind != "none" else build_none(cache)
        _, logs = model.loss(*batch, progress=0.0)
        with torch.no_grad():
            logits = model.student(batch[0])
        assert logs["ce"] == pytest.approx(F.cross_entropy(logits, batch[1], label_smoothing=0.1).item(), rel=1e-5)


def build_none(cache):
    spec = StudentSpec(kind="vit", depth=3, dim=16, heads=2)
    torch.manual_seed(0)
    return Distillation(Method(name="m", kind="none"), build_student(spec, 10), student_stages(spec), cache.shapes, 10,
                        cache.batch(0, torch.arange(2))[0], 0.1)


def test_ofa_official_form_is_ce_plus_kd_plus_a_branch_on_every_stage(cache):
    """OFA-KD's distillers/ofa.py: gt CE + ofa_loss(final logits) + Σ over --ofa-stage (all stages) of ofa_loss."""
    batch = cache.batch(0, torch.arange(8))
    images, labels, t_feats, t_logits = batch
    model = build(cache, kind="ofa", ofa_eps=1.5)
    assert len(model.ofa.branches.branches) == len(model.stages)
    total, logs = model.loss(*batch, progress=0.0)
    feats, logits = features_and_logits(model.student, images, model.stages)
    ce = F.cross_entropy(logits, labels, label_smoothing=0.1)
    kd = ofa_loss(logits, t_logits, labels, 1.5, official_code=True)
    branches = sum(ofa_loss(b, t_logits, labels, 1.5, official_code=True) for b in model.ofa.branches(feats))
    assert total.item() == pytest.approx((ce + kd + branches).item(), rel=1e-5)
    assert logs["kd"] == pytest.approx(kd.item(), rel=1e-5)

    paper = build(cache, kind="ofa", form="paper", ofa_eps=1.5)
    assert len(paper.ofa.branches.branches) == len(paper.stages) - 1
    total, _ = paper.loss(*batch, progress=0.0)
    feats, logits = features_and_logits(paper.student, images, paper.stages)
    ce = F.cross_entropy(logits, labels, label_smoothing=0.1)
    expected = ce + ofa_total(paper.ofa.branches(feats[:-1]), logits, t_logits, labels, 1.5)
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)

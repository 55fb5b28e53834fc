"""Image KD methods: DKD, FitNet, OFA-KD, UHKD (frequency features, alignment, loss) and token grids."""
import math

import methods  # noqa: F401  (torchvision shim first)
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from methods.dkd import dkd_loss
from methods.feature_grid import grid_shape, to_grid
from methods.fitnet import FitNetHint
from methods.logit_kd import kd_kl_loss
from methods.ofa import OFABranches, ofa_loss, ofa_total
from methods.uhkd import FeatureAlignment, FrequencyTransform, UHKDDistiller, frequency_features, uhkd_loss

B, K = 4, 10


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def logits_and_target():
    return torch.randn(B, K) * 2, torch.randn(B, K) * 2, torch.randint(0, K, (B,))


# ---------------------------------------------------------------- DKD

def test_dkd_zero_with_zero_gradient_when_student_equals_teacher():
    _, teacher, target = logits_and_target()
    student = teacher.clone().requires_grad_(True)
    loss = dkd_loss(student, teacher, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert student.grad.abs().max() < 1e-6
    other = (teacher + torch.randn(B, K)).requires_grad_(True)
    assert dkd_loss(other, teacher, target) > 1e-3


def test_dkd_decomposes_classical_kd_per_sample():
    """Paper Eq. (3): KD = TCKD + (1 − p_t^teacher) · NCKD for one sample, same temperature."""
    student, teacher, target = logits_and_target()
    temp = 3.0
    for i in range(B):
        s, t, y = student[i:i + 1], teacher[i:i + 1], target[i:i + 1]
        p_target = F.softmax(t / temp, 1)[0, y].item()
        kd = kd_kl_loss(s, t, temp)
        assert dkd_loss(s, t, y, alpha=1.0, beta=1.0 - p_target, temperature=temp) == pytest.approx(kd.item(), rel=1e-4)
        tckd = dkd_loss(s, t, y, alpha=1.0, beta=0.0, temperature=temp)
        nckd = dkd_loss(s, t, y, alpha=0.0, beta=1.0, temperature=temp)
        assert tckd > 0 and nckd > 0


def test_dkd_teacher_gets_no_gradient():
    student, teacher, target = logits_and_target()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    dkd_loss(student, teacher, target).backward()
    assert teacher.grad is None and student.grad is not None


# ---------------------------------------------------------------- OFA

def entropy(logits):
    p = F.softmax(logits, 1)
    return -(p * p.log()).sum(1).mean()


def test_ofa_paper_formula_at_eps_1_is_ce_plus_kd_plus_teacher_entropy():
    student, teacher, target = logits_and_target()
    expected = F.cross_entropy(student, target) + kd_kl_loss(student, teacher) + entropy(teacher)
    assert ofa_loss(student, teacher, target, eps=1.0).item() == pytest.approx(expected.item(), rel=1e-5)
    official = ofa_loss(student, teacher, target, eps=1.0, official_code=True)
    assert official.item() == pytest.approx((kd_kl_loss(student, teacher) + entropy(teacher)).item(), rel=1e-5)


@pytest.mark.parametrize("eps", [0.0, 1.0, 2.5])
def test_ofa_minimised_at_the_weighted_target_not_perturbations(eps):
    """For fixed teacher the loss −Σ w_c log q_c is minimal at q ∝ w (w_ĉ = (1+p_ĉ)^ε, w_c = p_c)."""
    _, teacher, target = logits_and_target()
    p_t = F.softmax(teacher, 1)
    onehot = F.one_hot(target, K).bool()
    w = torch.where(onehot, (1 + p_t) ** eps, p_t)
    best = w.log().requires_grad_(True)
    loss = ofa_loss(best, teacher, target, eps=eps)
    loss.backward()
    assert best.grad.abs().max() < 1e-6
    for _ in range(5):
        assert ofa_loss(best.detach() + 0.3 * torch.randn(B, K), teacher, target, eps=eps) > loss
    # student = teacher is not the optimum: the target class is up-weighted
    assert ofa_loss(teacher, teacher, target, eps=eps) > loss


def test_ofa_official_code_eps_1_has_zero_gradient_at_student_equals_teacher():
    _, teacher, target = logits_and_target()
    student = teacher.clone().requires_grad_(True)
    ofa_loss(student, teacher, target, eps=1.0, official_code=True).backward()
    assert student.grad.abs().max() < 1e-6


def test_ofa_branches_and_total_for_maps_and_tokens():
    branches = OFABranches([(16, 8, 8), (65, 32), (64, 24)], num_classes=K, hidden_dim=16)
    feats = [torch.randn(B, 16, 8, 8, requires_grad=True), torch.randn(B, 65, 32), torch.randn(B, 64, 24)]
    outs = branches(feats)
    assert [tuple(o.shape) for o in outs] == [(B, K)] * 3
    student, teacher, target = logits_and_target()
    teacher.requires_grad_(True)
    total = ofa_total(outs, student, teacher, target, eps=[1.0, 1.2, 1.5, 2.0])
    parts = [ofa_loss(o, teacher, target, e) for o, e in zip([*outs, student], [1.0, 1.2, 1.5, 2.0])]
    assert total.item() == pytest.approx(sum(p.item() for p in parts), rel=1e-6)
    total.backward()
    assert feats[0].grad is not None and teacher.grad is None
    assert all(p.grad is not None for p in branches.parameters())
    with pytest.raises(ValueError):
        ofa_total(outs, student, teacher, target, eps=[1.0, 2.0])


# ---------------------------------------------------------------- FitNet and token grids

def test_to_grid_drops_class_token_and_keeps_token_order():
    tokens = torch.randn(2, 1 + 16, 3)
    grid = to_grid(tokens)
    assert grid.shape == (2, 3, 4, 4)
    assert torch.equal(grid[:, :, 1, 2], tokens[:, 1 + 1 * 4 + 2])  # row-major patch order, class token gone
    assert grid_shape((65, 192)) == (192, 8, 8) and grid_shape((64, 128)) == (128, 8, 8)
    with pytest.raises(ValueError):
        to_grid(torch.randn(2, 198, 3))  # two prefix tokens must be given explicitly
    assert to_grid(torch.randn(2, 198, 3), num_prefix_tokens=2).shape == (2, 3, 14, 14)


def test_fitnet_identity_projector_on_equal_features_gives_zero():
    hint = FitNetHint(8, 8, batch_norm=False)
    with torch.no_grad():
        hint.projector.weight.copy_(torch.eye(8).view(8, 8, 1, 1))
        hint.projector.bias.zero_()
    feat = torch.randn(B, 8, 6, 6)
    assert hint(feat, feat.clone()).item() == 0.0
    assert hint(feat, feat + 0.1).item() > 1e-3
    tokens = feat.flatten(2).transpose(1, 2)  # (B, 36, 8) tokens of the same map
    assert hint(tokens, feat).item() == pytest.approx(0.0, abs=1e-12)


def test_fitnet_loss_decreases_with_sgd_and_teacher_gets_no_gradient():
    hint = FitNetHint(16, 32)  # CNN student 16×16 maps → teacher 32 ch at 8×8
    student = torch.randn(B, 16, 16, 16)
    teacher = torch.randn(B, 32, 8, 8, requires_grad=True)
    opt = torch.optim.SGD(hint.parameters(), lr=0.5)
    losses = []
    for _ in range(5):
        loss = hint(student, teacher)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] and teacher.grad is None
    vit = FitNetHint(192, 32)
    assert vit(torch.randn(2, 65, 192), teacher[:2]).dim() == 0


# ---------------------------------------------------------------- UHKD

def test_frequency_features_shapes_and_errors():
    x = torch.randn(2, 5, 8, 7)
    assert frequency_features(x, 4, "amplitude").shape == (2, 5, 4, 4)
    assert frequency_features(x, 3, "realimag").shape == (2, 10, 3, 3)
    with pytest.raises(ValueError, match="crop"):
        frequency_features(torch.randn(2, 5, 3, 8), crop=4)
    with pytest.raises(ValueError):
        frequency_features(x, mode="phase")


def test_frequency_amplitude_invariant_to_circular_shift_realimag_is_not():
    x = torch.randn(2, 3, 8, 8)
    shifted = torch.roll(x, shifts=(3, -2), dims=(2, 3))
    assert torch.allclose(frequency_features(shifted), frequency_features(x), atol=1e-5)
    assert not torch.allclose(frequency_features(shifted, mode="realimag"),
                              frequency_features(x, mode="realimag"), atol=1e-3)


def test_frequency_realimag_matches_explicit_fft_low_frequencies():
    x = torch.randn(2, 3, 8, 10)
    ref = torch.fft.fft2(x) / math.sqrt(8 * 10)  # "ortho" normalisation
    rows = torch.tensor([-2, -1, 0, 1]) % 8  # frequencies −2 … 1, DC third
    cols = torch.tensor([-2, -1, 0, 1]) % 10
    ref = ref[..., rows[:, None], cols[None, :]]
    out = frequency_features(x, crop=4, mode="realimag")
    assert torch.allclose(out[:, :3], ref.real, atol=1e-5) and torch.allclose(out[:, 3:], ref.imag, atol=1e-5)
    assert torch.allclose(out[:, :3, 2, 2], x.sum((2, 3)) / math.sqrt(80), atol=1e-5)  # DC at the centre


@pytest.mark.parametrize("student_shape,teacher_shape", [
    ((16, 32, 32), (64, 8, 8)),     # CNN → CNN
    ((65, 192), (32, 16, 16)),      # ViT tokens with class token → CNN
    ((64, 128), (32, 16, 16)),      # MLP-Mixer tokens → CNN
    ((16, 32, 32), (197, 48)),      # CNN → ViT teacher tokens
])
@pytest.mark.parametrize("mode", ["amplitude", "realimag"])
def test_alignment_matches_transform_shape(student_shape, teacher_shape, mode):
    align = FeatureAlignment([student_shape], [teacher_shape], crop=4, mode=mode, channels=24)
    transform = FrequencyTransform(crop=4, mode=mode, channels=24)
    s = align([torch.randn(2, *student_shape)])
    t = transform([torch.randn(2, *teacher_shape)])
    c = 24 * (2 if mode == "realimag" else 1)
    assert s[0].shape == t[0].shape == (2, c, 4, 4)


def test_frequency_transform_channel_reduction_is_group_mean():
    x = torch.randn(2, 6, 8, 8)
    reduced = FrequencyTransform(channels=3, mode="realimag")([x])[0]
    expected = frequency_features(x.view(2, 3, 2, 8, 8).mean(2), mode="realimag")
    assert torch.allclose(reduced, expected, atol=1e-6)
    assert len(list(FrequencyTransform().parameters())) == 0


def test_uhkd_loss_feature_part_zero_and_gradient_routing():
    distiller = UHKDDistiller([(16, 32, 32), (65, 48)], [(64, 8, 8), (32, 16, 16)], crop=4)
    s_feats = [torch.randn(2, 16, 32, 32, requires_grad=True), torch.randn(2, 65, 48, requires_grad=True)]
    t_feats = [torch.randn(2, 64, 8, 8, requires_grad=True), torch.randn(2, 32, 16, 16, requires_grad=True)]
    s_logits = torch.randn(2, K, requires_grad=True)
    t_logits = torch.randn(2, K, requires_grad=True)
    target = torch.randint(0, K, (2,))
    s_freq, t_freq = distiller(s_feats, t_feats)

    same = [t.detach().clone().requires_grad_(True) for t in t_freq]
    total, parts = uhkd_loss(same, t_freq, s_logits, t_logits, target)
    assert parts["feature"] == 0.0 and parts["kd"] > 0 and parts["ce"] > 0
    assert total.item() == pytest.approx(parts["kd"] + parts["ce"], rel=1e-6)

    total, parts = uhkd_loss(s_freq, t_freq, s_logits, t_logits, target, feature_weight=2.0, kd_weight=0.5,
                             level_weights=[1.0, 3.0])
    expected = 2.0 * (F.mse_loss(s_freq[0], t_freq[0]) + 3.0 * F.mse_loss(s_freq[1], t_freq[1])).item()
    assert parts["feature"] * 2.0 == pytest.approx(expected, rel=1e-5)
    assert parts["total"] == pytest.approx(total.item()) and isinstance(parts["feature"], float)
    total.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in [*s_feats, s_logits])
    assert all(p.grad is not None for p in distiller.align.parameters())
    assert all(t.grad is None or t.grad.abs().sum() == 0 for t in [*t_feats, t_logits])


def test_uhkd_loss_rejects_mismatched_levels():
    s, t = [torch.randn(2, 3, 4, 4)], [torch.randn(2, 3, 3, 3)]
    logits, target = torch.randn(2, K), torch.randint(0, K, (2,))
    with pytest.raises(ValueError):
        uhkd_loss(s, t, logits, logits, target)
    with pytest.raises(ValueError):
        uhkd_loss(s, s, logits, logits, target, level_weights=[1.0, 1.0])

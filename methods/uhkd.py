"""UHKD (arXiv 2510.24116, "Unified Heterogeneous Knowledge Distillation"), built from the abstract:
intermediate features compared in the frequency domain, a parameter-free Feature Transformation
Module on the teacher, a learnable Feature Alignment Module on the student, multi-level MSE plus
KL on logits (plus CE on labels).

Frequency representation (our choice, the abstract gives none): 2-D FFT over H, W (norm="ortho"),
fftshift, and a centred crop × crop window of the lowest frequencies (DC at the centre). Low
frequencies carry the global layout of a map, not its architecture-specific local texture, which
is what makes CNN, ViT and MLP-Mixer features comparable; the crop also makes the representation
small. mode="amplitude" (|F|) is invariant to circular spatial shifts of the input;
mode="realimag" keeps the phase (real and imaginary parts stacked on the channel axis).
Tokens (B, N, C) are turned into grids as in :mod:`methods.feature_grid` (class token dropped).

Two settings of the registered method fix what the abstract leaves open about scale
(replications/uhkd/README.md gives the reasons):

- ``spectrum_norm="teacher_bin_rms"``: every (stage, frequency bin) of both representations is
  divided by the teacher's root-mean-square value at that bin (over the images and channels of a
  fixed calibration batch). The raw orthonormal spectrum of a post-ReLU map is dominated by its DC
  bin (√(H·W) × the channel mean); after this fixed rescaling each bin of the teacher has RMS 1, so
  no bin or stage carries the term by its scale alone. ``"none"`` keeps the raw spectra.
- ``feature_weight_rule="ce_at_init"``: the frequency term's weight is set by code, once, so that
  the weighted term equals the student's cross-entropy at initialisation on the calibration batch
  (times ``feature_weight``). ``"fixed"`` uses ``feature_weight`` as it is.

Both are computed by :meth:`UHKD.calibrate` before training (the engine calls it on a fixed batch)
and kept as buffers, so a resumed run uses the same values.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from methods.feature_grid import grid_shape, resize_to, to_grid
from methods.logit_kd import kd_kl_loss
from methods.registry import MethodParams, register

__all__ = ["FeatureAlignment", "FrequencyTransform", "UHKD", "UHKDDistiller", "bin_rms", "bin_shares",
           "frequency_features", "uhkd_loss"]


def frequency_features(x: torch.Tensor, crop: int = 4, mode: str = "amplitude") -> torch.Tensor:
    """(B, C, H, W) → (B, C, crop, crop) amplitudes, or (B, 2C, crop, crop) [real; imag] for "realimag".

    The window holds the frequencies −(crop // 2) … (crop − 1) // 2 on each axis. The FFT runs in
    float32; the result has x's dtype when x is floating point.
    """
    if mode not in ("amplitude", "realimag"):
        raise ValueError(f"mode must be 'amplitude' or 'realimag', got {mode!r}")
    if x.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) features, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if crop < 1 or h < crop or w < crop:
        raise ValueError(f"cannot keep a {crop}×{crop} low-frequency crop of a {h}×{w} map: "
                         f"H and W must be ≥ crop ≥ 1")
    spec = torch.fft.fftshift(torch.fft.fft2(x.float(), norm="ortho"), dim=(-2, -1))
    top, left = h // 2 - crop // 2, w // 2 - crop // 2  # fftshift puts DC at (H // 2, W // 2)
    spec = spec[..., top:top + crop, left:left + crop]
    out = spec.abs() if mode == "amplitude" else torch.cat([spec.real, spec.imag], dim=1)
    return out.to(x.dtype) if x.is_floating_point() else out


def _reduced_channels(c: int, channels: int | None) -> int:
    return c if channels is None else min(c, channels)


class FrequencyTransform(nn.Module):
    """Teacher side (FTM), no parameters: list of stage features (maps or tokens) → list of
    ``frequency_features``. With ``channels``, a stage with more channels is first reduced to
    ``channels`` by adaptive average pooling over the channel axis (means of contiguous groups)."""

    def __init__(self, crop: int = 4, mode: str = "amplitude", channels: int | None = None):
        super().__init__()
        self.crop, self.mode, self.channels = crop, mode, channels

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for x in feats:
            x = to_grid(x)
            c = _reduced_channels(x.shape[1], self.channels)
            if c != x.shape[1]:
                x = F.adaptive_avg_pool3d(x.unsqueeze(1), (c, *x.shape[-2:])).squeeze(1)
            out.append(frequency_features(x, self.crop, self.mode))
        return out


class FeatureAlignment(nn.Module):
    """Student side (FAM), learnable: per stage, student map / tokens → 1×1 conv to the teacher stage's
    (reduced) channel count (+ BN + ReLU if ``norm_act``) → resize to the teacher's H × W →
    ``frequency_features``; the output has the shape of :class:`FrequencyTransform`'s output.
    Shapes are per sample, (C, H, W) or tokens (N, C); ``channels`` must match the teacher side's."""

    def __init__(self, student_shapes: Sequence[Sequence[int]], teacher_shapes: Sequence[Sequence[int]],
                 crop: int = 4, mode: str = "amplitude", channels: int | None = None, norm_act: bool = True):
        super().__init__()
        if len(student_shapes) != len(teacher_shapes):
            raise ValueError(f"{len(student_shapes)} student stages but {len(teacher_shapes)} teacher stages")
        self.crop, self.mode = crop, mode
        self.sizes, projectors = [], []
        for s_shape, t_shape in zip(student_shapes, teacher_shapes):
            c_s = grid_shape(s_shape)[0]
            c_t, h_t, w_t = grid_shape(t_shape)
            c_t = _reduced_channels(c_t, channels)
            layers = [nn.Conv2d(c_s, c_t, 1, bias=not norm_act)]
            layers += [nn.BatchNorm2d(c_t), nn.ReLU(inplace=True)] if norm_act else []
            projectors.append(nn.Sequential(*layers))
            self.sizes.append((h_t, w_t))
        self.projectors = nn.ModuleList(projectors)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.projectors):
            raise ValueError(f"{len(feats)} student features for {len(self.projectors)} stages")
        return [frequency_features(resize_to(proj(to_grid(x)), size), self.crop, self.mode)
                for proj, size, x in zip(self.projectors, self.sizes, feats)]


class UHKDDistiller(nn.Module):
    """FTM + FAM sharing one configuration: ``(student_feats, teacher_feats) -> (student_freq, teacher_freq)``."""

    def __init__(self, student_shapes: Sequence[Sequence[int]], teacher_shapes: Sequence[Sequence[int]],
                 crop: int = 4, mode: str = "amplitude", channels: int | None = None, norm_act: bool = True):
        super().__init__()
        self.transform = FrequencyTransform(crop, mode, channels)
        self.align = FeatureAlignment(student_shapes, teacher_shapes, crop, mode, channels, norm_act)

    def forward(self, student_feats, teacher_feats) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.align(student_feats), self.transform(teacher_feats)


def uhkd_loss(student_freq: Sequence[torch.Tensor], teacher_freq: Sequence[torch.Tensor],
              student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
              feature_weight: float = 1.0, kd_weight: float = 1.0, ce_weight: float = 1.0,
              temperature: float = 4.0, level_weights: Sequence[float] | None = None,
              ce: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """feature_weight · Σ_l w_l · MSE(student_l, teacher_l) + kd_weight · kd_kl_loss(T) + ce_weight · CE.

    Teacher tensors are detached; ``level_weights`` defaults to 1 per level; ``ce`` replaces the plain
    cross-entropy of the logits (e.g. the engine's label-smoothed one). Returns the total and
    the detached parts {"feature", "kd", "ce", "total"} as floats (parts unweighted, total weighted).
    """
    if len(student_freq) != len(teacher_freq):
        raise ValueError(f"{len(student_freq)} student levels but {len(teacher_freq)} teacher levels")
    weights = [1.0] * len(student_freq) if level_weights is None else list(level_weights)
    if len(weights) != len(student_freq):
        raise ValueError(f"{len(weights)} level weights for {len(student_freq)} levels")
    feature = student_logits.new_zeros(())
    for w, s, t in zip(weights, student_freq, teacher_freq):
        if s.shape != t.shape:
            raise ValueError(f"student {tuple(s.shape)} and teacher {tuple(t.shape)} representations differ")
        feature = feature + w * F.mse_loss(s, t.detach())
    kd = kd_kl_loss(student_logits, teacher_logits, temperature)
    ce = F.cross_entropy(student_logits, target) if ce is None else ce
    total = feature_weight * feature + kd_weight * kd + ce_weight * ce
    parts = {"feature": feature.item(), "kd": kd.item(), "ce": ce.item(), "total": total.item()}
    return total, parts


def bin_rms(teacher_freq: torch.Tensor) -> torch.Tensor:
    """(B, C, k, k) representation → (k, k): root-mean-square over images and channels per frequency bin
    (real and imaginary parts of a bin share one scale, so the phase is kept); tiny values are floored."""
    rms = teacher_freq.detach().float().pow(2).mean(dim=(0, 1)).sqrt()
    return rms.clamp_min(1e-6 * float(rms.max()) + 1e-12)


def bin_shares(student_freq: Sequence[torch.Tensor], teacher_freq: Sequence[torch.Tensor]) -> torch.Tensor:
    """Share of Σ_levels MSE that each (level, bin) carries: (levels, k, k), summing to 1."""
    parts = torch.stack([(s.detach() - t.detach()).pow(2).mean(dim=(0, 1)) / s[0, 0].numel()
                         for s, t in zip(student_freq, teacher_freq)])
    return parts / parts.sum()


class UHKDParams(MethodParams):
    ce_weight: float = Field(1.0, ge=0)
    kd_weight: float = Field(1.0, ge=0)
    feature_weight: float = Field(1.0, ge=0, description="the frequency term's weight; with feature_weight_rule "
                                  "ce_at_init, a factor on the weight the rule computes")
    temperature: float = Field(4.0, gt=0)
    crop: int = Field(4, ge=1, description="low-frequency window")
    freq_mode: Literal["amplitude", "realimag"] = "amplitude"
    spectrum_norm: Literal["none", "teacher_bin_rms"] = Field(
        "none", description="none: raw orthonormal spectra; teacher_bin_rms: each (stage, bin) divided by the "
        "teacher's RMS there on the calibration batch")
    feature_weight_rule: Literal["fixed", "ce_at_init"] = Field(
        "fixed", description="fixed: feature_weight as given; ce_at_init: weighted term = CE at initialisation "
        "on the calibration batch")


@register("image_kd", "uhkd", UHKDParams)
class UHKD(UHKDDistiller):
    """:func:`uhkd_loss` on every feature stage: teacher stages through the FFT transform, student
    stages through the learnable alignment, plus the KD and CE terms. With ``spectrum_norm`` or
    ``feature_weight_rule`` other than the raw settings, :meth:`calibrate` must run before :meth:`loss`."""

    def __init__(self, params: UHKDParams, student_shapes, teacher_shapes, num_classes: int):
        super().__init__(student_shapes, teacher_shapes, params.crop, params.freq_mode)
        self.params = params
        k = params.crop
        self.register_buffer("calibration_scale", torch.ones(len(teacher_shapes), k, k))
        self.register_buffer("calibration_weight", torch.ones(()))
        self.register_buffer("calibrated", torch.tensor(False))

    @property
    def needs_calibration(self) -> bool:
        p = self.params
        return p.spectrum_norm != "none" or p.feature_weight_rule != "fixed"

    def representations(self, feats, t_feats) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(student, teacher) frequency representations, rescaled per bin when ``spectrum_norm`` asks."""
        s_freq, t_freq = self(feats, t_feats)
        if self.params.spectrum_norm == "none":
            return s_freq, t_freq
        scales = self.calibration_scale.to(s_freq[0].dtype)
        return [s / c for s, c in zip(s_freq, scales)], [t / c for t, c in zip(t_freq, scales)]

    @torch.no_grad()
    def calibrate(self, ce, feats, logits, t_feats, t_logits, labels) -> dict[str, float]:
        """Fix the per-bin scales and the feature weight on one batch (the student at initialisation);
        returns what was set: ``feature_weight`` and the unweighted ``feature`` term after scaling."""
        if self.params.spectrum_norm == "teacher_bin_rms":
            _, t_freq = self(feats, t_feats)
            self.calibration_scale.copy_(torch.stack([bin_rms(t) for t in t_freq]))
        self.calibrated.fill_(True)
        s_freq, t_freq = self.representations(feats, t_feats)
        feature = sum(F.mse_loss(s.float(), t.float()) for s, t in zip(s_freq, t_freq))
        if self.params.feature_weight_rule == "ce_at_init":
            if not float(feature) > 0:
                raise ValueError("UHKD calibration: the frequency term is 0 on the calibration batch; "
                                 "ce_at_init cannot set its weight")
            self.calibration_weight.fill_(float(ce) / float(feature))
        return {"feature_weight": self.params.feature_weight * float(self.calibration_weight),
                "feature": float(feature), "ce": float(ce)}

    def loss(self, ce, feats, logits, t_feats, t_logits, labels, progress: float):
        p = self.params
        if self.needs_calibration and not bool(self.calibrated):
            raise RuntimeError("UHKD with spectrum_norm or feature_weight_rule set needs calibrate() before loss()")
        s_freq, t_freq = self.representations(feats, t_feats)
        weight = p.feature_weight * float(self.calibration_weight)
        total, parts = uhkd_loss(s_freq, t_freq, logits, t_logits, labels, weight, p.kd_weight,
                                 p.ce_weight, p.temperature, ce=ce)
        return total, {k: v for k, v in parts.items() if k != "total"}

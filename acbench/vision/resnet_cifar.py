"""CIFAR ResNets of He et al. (2016, §4.2) with option-A shortcuts, and their pretrained checkpoints.

Depth 6n+2 (20, 32, 44, 56, 110): a 3×3 stem conv to 16 channels, then three stages of n
BasicBlocks with 16, 32 and 64 channels at 32×32, 16×16 and 8×8 (for 32×32 inputs), global average
pooling and a ``linear`` classifier. Option A: where a block changes shape, the shortcut subsamples
``x[:, :, ::2, ::2]`` and zero-pads the new channels (no parameters). Parameter names follow
akamaster/pytorch_resnet_cifar10 (``conv1``, ``bn1``, ``layer1..layer3`` of blocks with
``conv1, bn1, conv2, bn2``, ``linear``), so its checkpoints load with ``strict=True``.

Inputs are (B, 3, 32, 32) floats normalised with the ImageNet mean/std
(:func:`acbench.vision.cifar_tensors.normalize`), as the checkpoints expect.

Checkpoints are declared in ``datasets/resnet_cifar10.yaml`` (files, SHA-256, public URLs) and
resolved like dataset files: the ``root`` argument, else ``ACBENCH_DATA_ROOT`` (read-only mirrors),
else the download cache; every file is verified against its declared SHA-256 before it is read.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from acbench.data.declaration import Declaration, load_declaration
from acbench.data.errors import DataError, show
from acbench.data.mirror import data_root, fetch
from acbench.data.registry import datasets_dir

__all__ = ["ResNetCifar", "OptionAShortcut", "BasicBlock", "resnet_cifar", "checkpoint_path",
           "load_resnet_cifar", "STAGE_CHANNELS", "DECLARATION"]

STAGE_CHANNELS = (16, 32, 64)
DECLARATION = "resnet_cifar10.yaml"
_PREFIX = "module."


class OptionAShortcut(nn.Module):
    """Parameter-free shortcut: (B, C_in, H, W) → (B, C_out, ⌈H/s⌉, ⌈W/s⌉).

    Spatial subsampling ``x[:, :, ::s, ::s]``, then the extra C_out − C_in channels are zeros,
    split evenly before and after the input channels (akamaster: ``planes // 4`` on each side).
    """

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        if planes < in_planes:
            raise ValueError(f"option-A shortcut cannot reduce channels ({in_planes} → {planes})")
        self.stride = stride
        self.before = (planes - in_planes) // 2
        self.after = planes - in_planes - self.before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a residual connection; ReLU after the sum."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        reshapes = stride != 1 or in_planes != planes
        self.shortcut = OptionAShortcut(in_planes, planes, stride) if reshapes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """ResNet-(6n+2) for 32×32 images; ``forward`` gives logits (B, num_classes)."""

    def __init__(self, depth: int, num_classes: int = 10):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n ≥ 1 (20, 32, 44, 56, 110), got {depth!r}")
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = nn.Conv2d(3, STAGE_CHANNELS[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_CHANNELS[0])
        in_planes = STAGE_CHANNELS[0]
        stages = []
        for i, planes in enumerate(STAGE_CHANNELS):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride=2 if i > 0 and j == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(STAGE_CHANNELS[-1], num_classes)
        for m in self.modules():  # akamaster's _weights_init
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def stages(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """The three stages ``layer1``, ``layer2``, ``layer3``."""
        return self.layer1, self.layer2, self.layer3

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Stage outputs (after the last block's ReLU): (B,16,32,32), (B,32,16,16), (B,64,8,8)."""
        x = F.relu(self.bn1(self.conv1(x)))
        features = []
        for stage in self.stages():
            x = stage(x)
            features.append(x)
        return features

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Last stage map (B, 64, H, W) → logits (B, num_classes): global average pool, ``linear``."""
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def features_and_logits(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(the three stage outputs, logits) from one forward pass; equals ``forward`` for the logits."""
        features = self.forward_features(x)
        return features, self.forward_head(features[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x)[-1])


def resnet_cifar(depth: int, num_classes: int = 10) -> ResNetCifar:
    """A randomly initialised CIFAR ResNet of ``depth`` = 6n+2."""
    return ResNetCifar(depth, num_classes)


def _declaration() -> Declaration:
    return load_declaration(datasets_dir() / DECLARATION)


def checkpoint_path(depth: int, root: Path | str | None = None) -> Path:
    """The verified local checkpoint of the CIFAR-10 ResNet-``depth`` (a declared "split" ``resnet<depth>``).

    Raises DataError naming the file and the fix when it is missing or its SHA-256 differs.
    """
    decl = _declaration()
    name = f"resnet{depth}"
    if name not in decl.splits:
        depths = sorted(int(s.removeprefix("resnet")) for s in decl.splits)
        raise DataError(f"{show(decl.path)}: no pretrained CIFAR-10 checkpoint declared for ResNet-{depth}; "
                        f"declared depths: {depths}. Declare the file (path, sha256, url) and a split "
                        f"{name!r} there, or train the model yourself")
    _, (file,) = decl.split(name)
    return fetch(decl, decl.file(file), data_root(root))


def load_resnet_cifar(depth: int, root: Path | str | None = None) -> ResNetCifar:
    """The pretrained CIFAR-10 ResNet-``depth`` (20 or 56 in the mirror), in eval mode on the CPU.

    The file is located and SHA-256-verified by :func:`checkpoint_path`, read with
    ``torch.load(weights_only=True)``, its ``module.`` key prefix stripped, and loaded strictly.
    The checkpoint's reported accuracy (on the original CIFAR-10) is kept as ``model.best_prec1``.
    """
    path = checkpoint_path(depth, root)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint["state_dict"]
    except Exception as exc:
        raise DataError(f"{show(path)}: not a readable {{'best_prec1', 'state_dict'}} checkpoint "
                        f"({type(exc).__name__}: {exc}); restore the verified file") from exc
    state = {k.removeprefix(_PREFIX): v for k, v in state.items()}
    model = ResNetCifar(depth)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(f"{show(path)}: its state dict does not fit ResNetCifar({depth}) "
                        f"({' '.join(str(exc).split())[:400]}); is it a ResNet-{depth} checkpoint?") from exc
    model.best_prec1 = float(checkpoint.get("best_prec1", float("nan")))
    return model.eval()

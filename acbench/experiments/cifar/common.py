"""Data, models and scoring shared by the CIFAR distillation stages (teacher fine-tuning, students)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import nn
from tqdm.auto import tqdm

from acbench.config import Strict
from acbench.errors import StageInputMissing
from acbench.items import Outcomes
from acbench.safe_io import load_folder_json, load_folder_tensors, save_folder, verify_folder
from acbench.vision.cifar_tensors import CLASSES_OF, augment, load_split, normalize, split_indices
from acbench.vision.resnet_cifar import resnet_cifar
from acbench.vision.students import default_stages, mixer_student, vit_student
from acbench.vision.timm_models import STAGES, TimmSpec, timm_model


class CifarData(Strict):
    """Which CIFAR images a stage reads. Splits: ``test``; ``valid``, a class-stratified ``valid_size``
    images held out of the training split (seeded by ``valid_seed``; used for model selection only);
    ``train``, the rest of the training split (optionally a stratified ``train_limit`` of it)."""

    dataset: Literal["cifar10_jpeg", "cifar100"] = "cifar10_jpeg"
    train_limit: int | None = Field(None, ge=10, description="class-stratified training subset (None: all)")
    test_limit: int | None = Field(None, ge=10, description="class-stratified test subset (None: all)")
    subset_seed: int = 0
    valid_size: int | None = Field(None, ge=10, description="class-stratified validation images held out of "
                                   "the training split (None: no validation split)")
    valid_seed: int = Field(0, description="seed of the validation split's draw")
    augment: bool = Field(True, description="random 4-pixel-padded crop + horizontal flip while training")

    @property
    def num_classes(self) -> int:
        return CLASSES_OF[self.dataset]

    def _where(self, split: str) -> tuple[str, dict]:
        """(the CIFAR split read, the keyword arguments that pick ``split``'s images from it)."""
        if split == "test":
            return "test", {"limit": self.test_limit, "seed": self.subset_seed}
        if split not in ("train", "valid"):
            raise ValueError(f"unknown split {split!r}: train, valid or test")
        if self.valid_size is None:
            if split == "valid":
                raise ValueError("no validation split: set data.valid_size")
            return "train", {"limit": self.train_limit, "seed": self.subset_seed}
        return "train", {"limit": self.train_limit if split == "train" else None, "seed": self.subset_seed,
                         "holdout": (self.valid_size, self.valid_seed, split)}

    def indices(self, split: str, labels: torch.Tensor) -> torch.Tensor:
        """Sorted indices of ``split``'s images into the whole ``train`` (for ``train`` / ``valid``) or
        ``test`` split with ``labels``."""
        return split_indices(labels, num_classes=self.num_classes, **self._where(split)[1])

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images (N, 3, 32, 32), int64 labels (N,)) of ``train``, ``valid`` or ``test``."""
        source, kwargs = self._where(split)
        return load_split(source, dataset=self.dataset, **kwargs)

    def split_record(self, valid: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
        """What identifies the validation split (recorded in a stage's metrics): its size, seed and the
        SHA-256 of its images and labels as loaded (``valid``, loaded here when not given)."""
        if self.valid_size is None:
            return {"valid_size": 0}
        images, labels = self.load("valid") if valid is None else valid
        digest = hashlib.sha256(images.contiguous().numpy().tobytes())
        digest.update(labels.contiguous().numpy().tobytes())
        return {"valid_size": self.valid_size, "valid_seed": self.valid_seed, "valid_sha256": digest.hexdigest()}


class StudentSpec(Strict):
    kind: Literal["vit", "mixer", "resnet"]
    depth: int = Field(ge=2, description="transformer / mixer blocks, or the ResNet depth (6n+2)")
    dim: int = Field(64, ge=8, description="token width (vit, mixer)")
    heads: int = Field(4, ge=1, description="vit")
    patch: int = Field(4, ge=1)


def build_student(spec: StudentSpec | TimmSpec, num_classes: int) -> nn.Module:
    if isinstance(spec, TimmSpec):
        return timm_model(spec, num_classes)
    if spec.kind == "vit":
        return vit_student(spec.depth, spec.dim, spec.heads, spec.patch, num_classes)
    if spec.kind == "mixer":
        return mixer_student(spec.depth, spec.dim, spec.patch, num_classes)
    return resnet_cifar(spec.depth, num_classes)


def student_stages(spec: StudentSpec | TimmSpec) -> list[int]:
    """Three feature points: the ResNet's stages, or the blocks ending the first, second and last third;
    a timm model's four stage maps (:mod:`acbench.vision.timm_models`)."""
    if isinstance(spec, TimmSpec):
        return list(range(STAGES))
    return [0, 1, 2] if spec.kind == "resnet" else list(default_stages(spec.depth))


class Collate:
    """Indices -> (normalised, optionally augmented float images, labels); the augmentation of a batch
    depends only on the seed and the batch's indices, so a resumed run sees the same images."""

    def __init__(self, data: tuple[torch.Tensor, torch.Tensor], seed: int, augment: bool = True):
        self.images, self.labels = data
        self.seed, self.augment = seed, augment

    def __call__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.tensor(indices, dtype=torch.long)
        images = self.images[index]
        if self.augment:
            key = (self.seed * 1_000_003 + sum((i + 1) * p for i, p in enumerate(indices[:8]))) % (2 ** 62)
            images = augment(images, torch.Generator().manual_seed(key))
        return normalize(images), self.labels[index]


@torch.no_grad()
def evaluate_items(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], batch_size: int, desc: str) -> Outcomes:
    """Per-image outcomes of ``model(images)`` logits: the image's index in the (sub)split, top-1 correct,
    the predicted class."""
    images, labels = data
    model.eval()
    predicted = []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, leave=False, mininterval=5):
        predicted.append(model(normalize(images[start:start + batch_size])).argmax(1))
    pred = torch.cat(predicted)
    return Outcomes(tuple(str(i) for i in range(len(images))), tuple(bool(c) for c in (pred == labels).tolist()),
                    tuple(str(int(c)) for c in pred.tolist()))


def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], batch_size: int, desc: str) -> float:
    """Top-1 accuracy (%) of ``model(images)`` logits."""
    return evaluate_items(model, data, batch_size, desc).accuracy


class Teacher:
    """A frozen teacher: ``features(x) -> ([stage maps], logits)`` without gradients (a CIFAR ResNet's
    three stages, or a timm model's four)."""

    def __init__(self, model: nn.Module):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        return self.model.features_and_logits(x)


def save_teacher(folder: Path, model: nn.Module, meta: dict) -> None:
    """``<folder>/teacher/``: weights, JSON and a digest manifest (verified by :func:`load_teacher`)."""
    save_folder(folder / "teacher", {"teacher.safetensors": model.state_dict()}, {"teacher.json": meta})


def load_teacher(folder: Path) -> Teacher:
    saved = folder / "teacher"
    if not (saved / "teacher.json").is_file():
        raise StageInputMissing(f"no fine-tuned teacher in {saved}", "run the teacher stage first")
    fix = f"delete {saved} and re-run the teacher stage"
    verify_folder(saved, fix)
    meta = load_folder_json(saved, "teacher.json", fix)
    if meta.get("model"):
        model = timm_model(TimmSpec.model_validate({**meta["model"], "pretrained": False}), meta["num_classes"])
    else:
        model = resnet_cifar(meta["depth"], meta["num_classes"])
    model.load_state_dict(load_folder_tensors(saved, "teacher.safetensors", fix))
    return Teacher(model)

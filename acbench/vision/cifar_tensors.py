"""CIFAR-10 (the JPEG mirror, dataset ``cifar10_jpeg``) as tensors, with normalisation and augmentation.

Other declared CIFAR datasets (``cifar10``, ``cifar100``: the python-pickle archives, downloaded)
load through the same functions with ``dataset=``.

Conventions: images are uint8 (N, 3, 32, 32) in RGB, labels int64 (N,) in the standard CIFAR-10
order; samples come in the split's file order (sorted by class, then file name), so shuffle when
training. ``normalize`` turns uint8 images into ImageNet-normalised floats (what the ResNet
checkpoints expect); ``augment`` is the usual CIFAR crop-and-flip, batch-wise on tensors.

Decoding is cached: the decoded full split is saved once in ``cache_dir`` (default
``<repo>/checkpoints/cache/``, git-ignored) as ``cifar10_jpeg-<split>-<zip SHA-256>-<code>.safetensors``
with a ``.sha256`` sidecar (verified before the cache is read; a damaged cache is refused). The name
carries the zip's SHA-256 (the declared one, which the data layer verifies the zip against before
decoding) and a digest of the decoding code (this module, the dataset's loader and what they import)
with the Pillow and torch versions, so a different zip or decoder never reuses a stale cache. A cache
hit does not touch the zip.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from acbench import paths
from acbench.data import DataError, get_declaration
from acbench.data import load_split as load_dataset_split
from acbench.data.errors import show
from acbench.digest import DigestMismatch, verify_sidecar, write_sidecar

__all__ = ["DATASET", "NUM_CLASSES", "IMAGENET_MEAN", "IMAGENET_STD", "load_split", "load_indexed", "split_indices", "cache_path",
           "stratified_indices", "holdout_indices", "decode", "normalize", "augment"]

DATASET = "cifar10_jpeg"
NUM_CLASSES = 10
CLASSES_OF = {"cifar10_jpeg": 10, "cifar10": 10, "cifar100": 100}
IMAGE_SHAPE = (3, 32, 32)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_cache_dir() -> Path:
    """``<repo>/checkpoints/cache`` (``checkpoints/`` is git-ignored)."""
    return paths.repo_root() / "checkpoints" / "cache"


def cache_path(split: str, cache_dir: Path | str | None = None, dataset: str = DATASET) -> Path:
    """Where the decoded full ``split`` is cached: ``<cache_dir>/<dataset>-<split>-<archive sha256>.safetensors``."""
    decl = get_declaration(dataset)
    _, files = decl.split(split)
    (zip_name,) = files
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return folder / f"{dataset}-{split}-{decl.file(zip_name).sha256}-{decoder_digest(dataset)[:12]}.safetensors"


def decoder_digest(dataset: str = DATASET) -> str:
    """Digest of the code that decodes ``dataset`` (this module, its loader, their imports) and of the
    Pillow and torch versions."""
    from acbench import provenance
    from acbench.data.registry import datasets_dir

    return provenance.code_digest([Path(__file__), datasets_dir() / f"{dataset}.py"], ("pillow", "torch"))


def stratified_indices(labels: torch.Tensor | Sequence[int], limit: int, seed: int = 0,
                       num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Sorted int64 indices of ``limit // num_classes`` samples of every class, drawn with ``seed``.

    ``limit`` must be a positive multiple of ``num_classes`` no larger than the split allows.
    """
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0 or limit % num_classes:
        raise ValueError(f"limit must be a positive multiple of {num_classes} (equal count per class), got {limit!r}")
    per_class = limit // num_classes
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        if len(members) < per_class:
            raise ValueError(f"limit={limit} needs {per_class} images of class {c}, the split has {len(members)}")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def decode(items: Sequence, indices: Sequence[int] | None = None,
           desc: str = "decoding") -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``items[i]`` = (PIL RGB 32×32 image, label) for ``indices`` (default: all), with a progress bar.

    Returns uint8 images (N, 3, 32, 32) and int64 labels (N,).
    """
    indices = range(len(items)) if indices is None else [int(i) for i in indices]
    images = np.empty((len(indices), 32, 32, 3), dtype=np.uint8)
    labels = np.empty(len(indices), dtype=np.int64)
    for k, i in enumerate(tqdm(indices, desc=desc, unit="img")):
        image, label = items[i]
        array = np.asarray(image)
        if array.shape != (32, 32, 3):
            source = show(items.zip_path) if hasattr(items, "zip_path") else type(items).__name__
            raise DataError(f"{source}: image {i} has shape "
                            f"{array.shape}, expected (32, 32, 3); restore the original archive")
        images[k], labels[k] = array, label
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def save_atomic(payload: dict[str, torch.Tensor], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        save_file(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache file is ordinary data
        os.replace(tmp, target)
        write_sidecar(target)
    finally:
        tmp.unlink(missing_ok=True)


def _read_cache(path: Path, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    fix = f"delete {show(path)} so the split is decoded again"
    try:
        verify_sidecar(path, fix)
        payload = load_file(path)
        images, labels = payload["images"], payload["labels"]
    except DigestMismatch as exc:
        raise DataError(f"cache {exc.message}; {fix}") from None
    except Exception as exc:
        raise DataError(f"{show(path)}: unreadable cache ({type(exc).__name__}: {exc}); {fix}") from exc
    if (images.dtype != torch.uint8 or tuple(images.shape) != (size, *IMAGE_SHAPE)
            or labels.dtype != torch.int64 or tuple(labels.shape) != (size,)):
        raise DataError(f"{show(path)}: cache holds images {images.dtype} {tuple(images.shape)} and labels "
                        f"{labels.dtype} {tuple(labels.shape)}, expected uint8 ({size}, 3, 32, 32) and "
                        f"int64 ({size},) for split {split!r}; {fix}")
    return images, labels


def holdout_indices(labels: torch.Tensor | Sequence[int], size: int, seed: int = 0,
                    num_classes: int = NUM_CLASSES) -> tuple[torch.Tensor, torch.Tensor]:
    """(rest, held): ``held`` = :func:`stratified_indices` (``size`` images, equal per class, drawn with
    ``seed``), ``rest`` = every other index; both sorted int64, disjoint, together the whole split."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    held = stratified_indices(labels, size, seed, num_classes)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).flatten(), held


def load_indexed(split: str, choose: Callable[[torch.Tensor], torch.Tensor], cache_dir: Path | str | None = None,
                 *, root: Path | str | None = None, dataset: str = DATASET) -> tuple[torch.Tensor, torch.Tensor]:
    """The images ``choose(labels)`` (sorted indices into the whole split, from its int64 labels) of
    ``split``, as (uint8 images (N, 3, 32, 32), int64 labels (N,)).

    The full split is read from the cache when present. Otherwise it is decoded from the zip (located
    and verified through the data registry; ``root`` as in :func:`acbench.data.load_split`) and
    cached when more than half of it is chosen; a smaller choice decodes only its images and caches
    nothing (the result is identical either way).
    """
    if dataset not in CLASSES_OF:
        raise ValueError(f"unknown CIFAR dataset {dataset!r} (known: {sorted(CLASSES_OF)})")
    size, _ = get_declaration(dataset).split(split)
    path = cache_path(split, cache_dir, dataset)
    if path.exists():
        images, labels = _read_cache(path, split, size)
        chosen = choose(labels)
        return (images, labels) if len(chosen) == size else (images[chosen], labels[chosen])
    items = load_dataset_split(dataset, split, root)
    chosen = choose(torch.as_tensor(items.targets, dtype=torch.int64))
    if 2 * len(chosen) <= size:
        return decode(items, chosen, desc=f"decoding {dataset} {split} ({len(chosen)} images)")
    images, labels = decode(items, desc=f"decoding {dataset} {split}")
    save_atomic({"images": images, "labels": labels}, path)
    return (images, labels) if len(chosen) == size else (images[chosen], labels[chosen])


def split_indices(labels: torch.Tensor, limit: int | None = None, seed: int = 0, num_classes: int = NUM_CLASSES,
                  holdout: tuple[int, int, str] | None = None) -> torch.Tensor:
    """Sorted indices into a split with ``labels``: with ``holdout`` = (size, seed, part), first the
    :func:`holdout_indices` part ``"valid"`` (the held-out images) or ``"train"`` (the rest); then, with
    ``limit``, a class-stratified ``limit`` of those, drawn with ``seed``."""
    base = torch.arange(len(labels))
    if holdout is not None:
        size, holdout_seed, part = holdout
        if part not in ("train", "valid"):
            raise ValueError(f"holdout part must be 'train' or 'valid', got {part!r}")
        rest, held = holdout_indices(labels, size, holdout_seed, num_classes)
        base = held if part == "valid" else rest
    if limit is None:
        return base
    return base[stratified_indices(labels[base], limit, seed, num_classes)]


def load_split(split: str, limit: int | None = None, seed: int = 0, cache_dir: Path | str | None = None,
               *, root: Path | str | None = None, dataset: str = DATASET,
               holdout: tuple[int, int, str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR ``split`` ("train" / "test") as (uint8 images (N, 3, 32, 32), int64 labels (N,)).

    ``limit``: a class-stratified subset of ``limit`` images (equal count per class, chosen with
    ``seed``), in split order; ``holdout``: see :func:`split_indices` (a validation split held out of
    ``split``). Decoding and the cache: :func:`load_indexed`.
    """
    if dataset not in CLASSES_OF:
        raise ValueError(f"unknown CIFAR dataset {dataset!r} (known: {sorted(CLASSES_OF)})")
    classes = CLASSES_OF[dataset]
    return load_indexed(split, lambda labels: split_indices(labels, limit, seed, classes, holdout), cache_dir,
                        root=root, dataset=dataset)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (..., 3, H, W) → float32 ``(x / 255 − mean) / std`` with the ImageNet mean/std."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    if images.dim() < 3 or images.shape[-3] != 3:
        raise ValueError(f"expected (..., 3, H, W) images, got shape {tuple(images.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    return (images.float() / 255 - mean) / std


def augment(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``padding``, crop back to H×W) and random horizontal flip, per image.

    ``images`` (N, C, H, W), any dtype and device; returns the same shape, dtype and device. Pads
    with zeros in the input's units, so augment uint8 images *before* :func:`normalize` for the
    usual black border. Offsets (uniform in 0..2·padding) and flips (probability ½) are drawn from
    ``generator`` (a CPU generator), so the result is deterministic given its state.
    """
    if images.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = dy[:, None] + torch.arange(h)                                   # (N, H) in padded coordinates
    cols = dx[:, None] + torch.where(flip[:, None], torch.arange(w - 1, -1, -1), torch.arange(w))
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    dev = images.device
    return padded[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
                  rows.to(dev)[:, None, :, None], cols.to(dev)[:, None, None, :]]

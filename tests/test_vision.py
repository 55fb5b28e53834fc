"""acbench.vision: CIFAR ResNets and their checkpoints, timm students' features, CIFAR-10 tensors and cache.

Tests that read the offline mirror are skipped without it. Only small subsets are decoded, except
the full test split (10,000 JPEGs, a few seconds) once, for the cache test.
"""
from __future__ import annotations

import re
import shutil

import pytest
import torch

from acbench.data import DataError, list_datasets, load_declaration
from acbench.data.registry import datasets_dir
from acbench.vision import cifar_tensors as ct
from acbench.vision import students
from acbench.vision.resnet_cifar import DECLARATION, OptionAShortcut, load_resnet_cifar, resnet_cifar
from data_fixtures import data_root  # noqa: F401  (fixture)

TEST_SUBSET = 500


@pytest.fixture(scope="module")
def test_subset(data_root, tmp_path_factory):  # noqa: F811
    """The stratified 500-image test subset (50 per class), decoded directly from the zip."""
    return ct.load_split("test", limit=TEST_SUBSET, seed=0, cache_dir=tmp_path_factory.mktemp("no_cache"),
                         root=data_root)


def _images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return ct.normalize(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8,
                                      generator=torch.Generator().manual_seed(seed)))


# --- checkpoints -------------------------------------------------------------------------------

def test_checkpoint_declaration_matches_mirror(data_root):  # noqa: F811
    decl = load_declaration(datasets_dir() / DECLARATION)
    sums = dict(reversed(line.split(maxsplit=1)) for line in (data_root / "SHA256SUMS").read_text().splitlines())
    mirrored = {rel.removeprefix(decl.folder + "/") for rel in sums if rel.startswith(decl.folder + "/")}
    assert {spec.path for spec in decl.files} == mirrored
    for spec in decl.files:
        assert spec.sha256 == sums[f"{decl.folder}/{spec.path}"]
        assert spec.size == (data_root / decl.folder / spec.path).stat().st_size
        assert re.search(r"/akamaster/pytorch_resnet_cifar10/[0-9a-f]{40}/", spec.url), spec.url
    assert "resnet_cifar10" not in list_datasets()  # weights, not a dataset: the registry is unchanged


@pytest.mark.parametrize("depth", [20, 56])
def test_pretrained_resnets_classify_jpeg_test_subset(depth, data_root, test_subset):  # noqa: F811
    model = load_resnet_cifar(depth, root=data_root)  # strict load inside
    images, labels = test_subset
    with torch.no_grad():
        accuracy = (model(ct.normalize(images)).argmax(1) == labels).float().mean().item()
    # The mirror README gives 81.0% for ResNet-20 on the full JPEG test set (ResNet-56 does better on
    # PNG: 93.6% vs 91.8%). On 500 images the standard error is about 1.8 points, so 70% is > 6 SE
    # below; chance is 10%. A wrong normalisation, shortcut or label order falls far below it.
    assert accuracy > 0.70, accuracy


def test_corrupted_or_missing_checkpoint_raises_clear_error(data_root, tmp_path):  # noqa: F811
    folder = tmp_path / "resnet-cifar10"
    folder.mkdir()
    with pytest.raises(DataError, match=r"resnet20-12fca82f\.th: missing.*raw\.githubusercontent"):
        load_resnet_cifar(20, root=tmp_path)
    copy = folder / "resnet20-12fca82f.th"
    shutil.copyfile(data_root / "resnet-cifar10" / copy.name, copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    bad_sum = r"resnet20-12fca82f\.th: checksum mismatch \(sha256 expected 12fca82f.*replace it"
    with pytest.raises(DataError, match=bad_sum):
        load_resnet_cifar(20, root=tmp_path)
    with pytest.raises(DataError, match=r"no pretrained CIFAR-10 checkpoint declared for ResNet-32.*\[20, 56\]"):
        load_resnet_cifar(32, root=tmp_path)


# --- ResNet architecture -----------------------------------------------------------------------

def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 16, 32, 32)
    shortcut = OptionAShortcut(16, 32, stride=2)
    y = shortcut(x)
    assert y.shape == (2, 32, 16, 16) and not list(shortcut.parameters())
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_resnet_depth_counts_weighted_layers(depth):
    model = resnet_cifar(depth)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert convs + 1 == depth  # 6n + 1 convolutions and the linear classifier
    assert sum(isinstance(m, OptionAShortcut) for m in model.modules()) == 2  # at the two downsamplings


def test_resnet_rejects_other_depths():
    with pytest.raises(ValueError, match="6n\\+2"):
        resnet_cifar(21)


# --- students ----------------------------------------------------------------------------------

STUDENTS = {
    "vit": (lambda: students.vit_student(depth=6, dim=192, heads=3), [(192, 8, 8)] * 3),
    "mixer": (lambda: students.mixer_student(depth=8, dim=256), [(256, 8, 8)] * 3),
    "resnet20": (students.resnet20, [(16, 32, 32), (32, 16, 16), (64, 8, 8)]),
}


@pytest.mark.parametrize("kind", STUDENTS)
def test_student_features_shapes_and_gradients(kind):
    build, shapes = STUDENTS[kind]
    torch.manual_seed(0)
    model = build().train()
    for m in model.modules():  # timm zero-initialises the Mixer's head, which would block d logits / d x
        if isinstance(m, torch.nn.Linear) and not m.weight.any():
            torch.nn.init.normal_(m.weight, std=0.02)
    x = _images(2).requires_grad_()
    features, logits = students.features_and_logits(model, x)
    assert [tuple(f.shape[1:]) for f in features] == shapes and all(f.shape[0] == 2 for f in features)
    assert logits.shape == (2, 10)
    for f in features:
        (grad,) = torch.autograd.grad(f.square().mean(), x, retain_graph=True)
        assert grad.abs().sum() > 0
    (grad,) = torch.autograd.grad(logits.sum(), x)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("kind", STUDENTS)
def test_features_and_logits_gives_the_models_own_logits(kind):
    torch.manual_seed(0)
    model = STUDENTS[kind][0]().eval()
    x = _images(3)
    _, logits = students.features_and_logits(model, x)
    assert torch.equal(logits, model(x))


@pytest.mark.parametrize("kind", ["vit", "mixer"])
def test_token_features_match_timm_intermediates(kind):
    """Independent check of block selection and token→grid layout: timm's own NCHW intermediates."""
    torch.manual_seed(0)
    model = STUDENTS[kind][0]().eval()
    x = _images(2)
    stages = students.default_stages(len(model.blocks))
    features, _ = students.features_and_logits(model, x, stages)
    _, reference = model.forward_intermediates(x, indices=list(stages), output_fmt="NCHW")
    for ours, theirs in zip(features, reference):
        assert torch.equal(ours, theirs)
    assert not torch.equal(features[0], features[1])


def test_stage_selection():
    assert students.default_stages(6) == (1, 3, 5) and students.default_stages(8) == (1, 4, 7)
    model = students.mixer_student(depth=3, dim=32).eval()
    x = _images(1)
    (last,), _ = students.features_and_logits(model, x, [-1])
    (same,), _ = students.features_and_logits(model, x, [2])
    assert torch.equal(last, same)
    with pytest.raises(IndexError):
        students.features_and_logits(model, x, [3])
    (layer2,), _ = students.features_and_logits(students.resnet20().eval(), x, [1])
    assert layer2.shape == (1, 32, 16, 16)
    with pytest.raises(TypeError, match="supports ResNetCifar"):
        students.features_and_logits(torch.nn.Conv2d(3, 3, 1), x)


# --- tensors: normalisation, augmentation ------------------------------------------------------

def test_normalize_uses_imagenet_statistics():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 2, 2)
    out = ct.normalize(images)
    mean, std = torch.tensor(ct.IMAGENET_MEAN).view(3, 1, 1), torch.tensor(ct.IMAGENET_STD).view(3, 1, 1)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0], (-mean / std).expand(3, 2, 2))
    assert torch.allclose(out[1], ((1 - mean) / std).expand(3, 2, 2))
    with pytest.raises(TypeError):
        ct.normalize(out)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_keeps_shape_and_dtype_and_is_deterministic(dtype):
    images = torch.randint(1, 256, (16, 3, 32, 32), generator=torch.Generator().manual_seed(1)).to(dtype)
    a = ct.augment(images, torch.Generator().manual_seed(7))
    assert a.shape == images.shape and a.dtype == dtype
    assert torch.equal(a, ct.augment(images, torch.Generator().manual_seed(7)))
    assert not torch.equal(a, ct.augment(images, torch.Generator().manual_seed(8)))


def test_augment_flips_per_image():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    out = ct.augment(images, torch.Generator().manual_seed(0), padding=0)
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, images)]
    kept = [torch.equal(o, i) for o, i in zip(out, images)]
    assert all(f != k for f, k in zip(flipped, kept))  # each image either flipped or not, never both
    assert 16 < sum(flipped) < 48  # both happen, about half each


def test_augment_output_is_a_padded_crop_possibly_flipped():
    images = torch.randint(1, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    out = ct.augment(images, torch.Generator().manual_seed(4))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for o, p in zip(out, padded):
        candidates = [c for dy in range(9) for dx in range(9)
                      for c in (p[:, dy:dy + 32, dx:dx + 32], p[:, dy:dy + 32, dx:dx + 32].flip(-1))]
        assert any(torch.equal(o, c) for c in candidates)
    assert (out == 0).any()  # some zero border shows (pixels themselves are ≥ 1)


# --- CIFAR-10 tensors: subsets and cache -------------------------------------------------------

def test_stratified_subset_is_balanced_and_seeded(test_subset):
    images, labels = test_subset
    assert images.shape == (TEST_SUBSET, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == [TEST_SUBSET // 10] * 10
    labels_all = torch.arange(10).repeat_interleave(100)
    a, b = ct.stratified_indices(labels_all, 50, seed=0), ct.stratified_indices(labels_all, 50, seed=1)
    assert torch.equal(a, ct.stratified_indices(labels_all, 50, seed=0)) and not torch.equal(a, b)
    assert torch.bincount(labels_all[b], minlength=10).tolist() == [5] * 10
    with pytest.raises(ValueError, match="multiple of 10"):
        ct.stratified_indices(labels_all, 55)


def test_second_load_hits_the_cache(data_root, tmp_path, monkeypatch, test_subset):  # noqa: F811
    images, labels = ct.load_split("test", cache_dir=tmp_path, root=data_root)
    assert images.shape == (10_000, 3, 32, 32) and torch.bincount(labels).tolist() == [1000] * 10
    sha = next(line.split()[0] for line in (data_root / "SHA256SUMS").read_text().splitlines()
               if line.endswith("cifar10-jpeg/test.zip"))
    name = f"cifar10_jpeg-test-{sha}-{ct.decoder_digest()[:12]}.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, f"{name}.sha256"]  # no temp file left

    def fail(*args, **kwargs):
        raise AssertionError("decoded or opened the zip despite the cache")

    monkeypatch.setattr(ct, "decode", fail)
    monkeypatch.setattr(ct, "load_dataset_split", fail)
    cached_images, cached_labels = ct.load_split("test", cache_dir=tmp_path, root=data_root)
    assert torch.equal(cached_images, images) and torch.equal(cached_labels, labels)
    subset = ct.load_split("test", limit=TEST_SUBSET, seed=0, cache_dir=tmp_path, root=data_root)
    assert torch.equal(subset[0], test_subset[0]) and torch.equal(subset[1], test_subset[1])

"""CIFAR-10/100 python-archive loaders, exercised on tiny synthetic archives (real checksums untouched)."""
from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from acbench.data import DataError, load_split
from data_fixtures import cache_env, override_declaration  # noqa: F401  (fixture)

LAYOUT = {
    "cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py", "labels",
                {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                "batches.meta", "label_names", 10),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python", "fine_labels",
                 {"train": ["train"], "test": ["test"]}, "meta", "fine_label_names", 100),
}
PER_MEMBER = 3


def _image(i: int) -> np.ndarray:
    """A 32x32x3 image whose pixels encode the image index and the channel."""
    hwc = np.zeros((32, 32, 3), dtype=np.uint8)
    hwc[..., 0], hwc[..., 1], hwc[..., 2] = i, 100 + i, 200
    hwc[0, 1, 0] = 7  # one asymmetric pixel catches a transposed reshape
    return hwc


def _add(tar: tarfile.TarFile, name: str, obj) -> None:
    raw = pickle.dumps(obj, protocol=2)
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def build_archive(path, name, payload=None):
    archive, top, label_key, members, meta, names_key, n_classes = LAYOUT[name]
    counter = 0
    with tarfile.open(path, "w:gz") as tar:
        for split_members in members.values():
            for member in split_members:
                imgs = [_image(counter + j) for j in range(PER_MEMBER)]
                data = np.stack([im.transpose(2, 0, 1).reshape(-1) for im in imgs])
                labels = [(counter + j) % n_classes for j in range(PER_MEMBER)]
                _add(tar, f"{top}/{member}", payload or {"data": data, label_key: labels})
                counter += PER_MEMBER
        _add(tar, f"{top}/{meta}", {names_key: [f"class{k}" for k in range(n_classes)]})
    return path


def _declaration(tmp_path, name, archive_path, url=None):
    archive = LAYOUT[name][0]
    decl = override_declaration(name, tmp_path / "decl", files={archive: archive_path},
                                urls={archive: url} if url else None)
    n_train = PER_MEMBER * len(LAYOUT[name][3]["train"])
    text = decl.read_text().replace("size: 50000", f"size: {n_train}").replace("size: 10000", f"size: {PER_MEMBER}")
    decl.write_text(text)
    return decl


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_synthetic_archive_from_a_root(tmp_path, name):
    root = tmp_path / "root"
    (root / name).mkdir(parents=True)
    archive = build_archive(root / name / LAYOUT[name][0], name)
    decl = _declaration(tmp_path, name, archive)
    train = load_split(name, "train", root, declaration=decl)
    test = load_split(name, "test", root, declaration=decl)
    assert len(train) == PER_MEMBER * len(LAYOUT[name][3]["train"]) and len(test) == PER_MEMBER
    img, label = train[1]
    assert img.mode == "RGB" and img.size == (32, 32) and label == 1
    assert np.array_equal(np.asarray(img), _image(1))
    assert test.targets == [(len(train) + j) % LAYOUT[name][6] for j in range(PER_MEMBER)]
    assert train.classes[:2] == ["class0", "class1"]


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_synthetic_archive_downloaded_into_cache(tmp_path, cache_env, name):
    upstream = build_archive(tmp_path / LAYOUT[name][0], name)
    decl = _declaration(tmp_path, name, upstream, url=upstream.as_uri())
    assert len(load_split(name, "test", declaration=decl)) == PER_MEMBER
    assert (cache_env / name / LAYOUT[name][0]).read_bytes() == upstream.read_bytes()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_archive_with_foreign_pickle_is_refused(tmp_path):
    root = tmp_path / "root"
    (root / "cifar10").mkdir(parents=True)
    archive = build_archive(root / "cifar10" / LAYOUT["cifar10"][0], "cifar10", payload=_Exploit())
    decl = _declaration(tmp_path, "cifar10", archive)
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: unreadable CIFAR archive .*posix\.system"):
        load_split("cifar10", "test", root, declaration=decl)

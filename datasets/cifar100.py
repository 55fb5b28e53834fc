"""CIFAR-100 loader: the python-pickle files read straight from cifar-100-python.tar.gz (fine labels)."""
from __future__ import annotations

from acbench.data.cifar_python import load_cifar_split
from acbench.data.images import ArrayImageDataset

ARCHIVE, TOP = "cifar-100-python.tar.gz", "cifar-100-python"


def load(split, files, *, fold, declaration) -> ArrayImageDataset:
    """Lazy (PIL RGB image, fine label) pairs; ``classes`` from the archive's meta file."""
    return load_cifar_split(files[ARCHIVE], [f"{TOP}/{split}"], label_key="fine_labels",
                            meta=f"{TOP}/meta", names_key="fine_label_names")

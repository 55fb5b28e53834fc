"""CIFAR-10 loader: the python-pickle batches read straight from cifar-10-python.tar.gz."""
from __future__ import annotations

from acbench.data.cifar_python import load_cifar_split
from acbench.data.images import ArrayImageDataset

ARCHIVE, TOP = "cifar-10-python.tar.gz", "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def load(split, files, *, fold, declaration) -> ArrayImageDataset:
    """Lazy (PIL RGB image, label) pairs; ``classes`` from batches.meta."""
    return load_cifar_split(files[ARCHIVE], [f"{TOP}/{b}" for b in BATCHES[split]],
                            label_key="labels", meta=f"{TOP}/batches.meta", names_key="label_names")

"""CIFAR-10 JPEG loader: lazy (PIL RGB image, label) pairs read from train.zip / test.zip."""
from __future__ import annotations

from acbench.data import DataError
from acbench.data.errors import show
from acbench.data.images import ZipImageFolder

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load(split, files, *, fold, declaration) -> ZipImageFolder:
    """Entries ``<split>/<class>/NNNN.jpg``; labels in the standard CIFAR-10 order."""
    path = files[f"{split}.zip"]
    images = ZipImageFolder(path, prefix=split)
    if images.classes != CLASSES:
        raise DataError(f"{show(path)}: class folders {images.classes}, expected {CLASSES}; "
                        "restore the original archive")
    return images

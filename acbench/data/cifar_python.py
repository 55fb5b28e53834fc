"""Reading the CIFAR "python version" archives (pickled batches in a .tar.gz) without extracting.

The batches are unpickled with an allow-list that admits only the numpy array constructors (and
``_codecs.encode``) that such pickles use, so a tampered archive cannot run code even if its
declared checksum were changed to match.
"""
from __future__ import annotations

import importlib
import pickle
import tarfile
from pathlib import Path

import numpy as np

from acbench.data.errors import DataError, show
from acbench.data.images import ArrayImageDataset

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes into protocol-2 pickles
}
_RESTORE = "restore the original archive (see its declaration)"


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return getattr(importlib.import_module(module), name)


def read_members(archive: Path, names: list[str]) -> dict[str, dict]:
    """Unpickle the members ``names`` of ``archive`` in one pass over the tar stream."""
    wanted, found = set(names), {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    with tar.extractfile(member) as f:
                        found[member.name] = _ArrayUnpickler(f, encoding="latin1").load()
    except (tarfile.TarError, pickle.UnpicklingError, EOFError, OSError) as exc:
        raise DataError(f"{show(archive)}: unreadable CIFAR archive ({exc}); {_RESTORE}") from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"{show(archive)}: members {missing} not found; {_RESTORE}")
    return found


def load_cifar_split(archive: Path, batches: list[str], label_key: str, meta: str, names_key: str) -> ArrayImageDataset:
    """The images of ``batches`` (member paths) as a lazy (PIL image, label) sequence."""
    members = read_members(archive, [*batches, meta])
    images, labels = [], []
    for name in batches:
        batch = members[name]
        if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
            raise DataError(f"{show(archive)}: member {name} lacks 'data' or {label_key!r}; {_RESTORE}")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(batch[label_key]) != len(data):
            raise DataError(f"{show(archive)}: member {name} has data of shape {data.shape} and "
                            f"{len(batch[label_key])} labels, expected (N, 3072) and N; {_RESTORE}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.extend(batch[label_key])
    classes = members[meta].get(names_key) if isinstance(members[meta], dict) else None
    if not isinstance(classes, list):
        raise DataError(f"{show(archive)}: member {meta} lacks {names_key!r}; {_RESTORE}")
    return ArrayImageDataset(np.ascontiguousarray(np.concatenate(images)), np.asarray(labels), classes)

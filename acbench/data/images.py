"""Lazy (PIL RGB image, int label) sequences, safe to use from DataLoader workers."""
from __future__ import annotations

import io
import operator
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from acbench.data.errors import DataError, show


class ZipImageFolder(Sequence):
    """Images stored as ``<prefix>/<class>/<file>`` entries of a zip, read without extracting.

    Labels follow the alphabetical order of the class folders. The zip handle is opened lazily
    and re-opened in each process (DataLoader workers), never pickled.
    """

    def __init__(self, zip_path: Path, prefix: str):
        self.zip_path = Path(zip_path)
        try:
            with zipfile.ZipFile(self.zip_path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
        except zipfile.BadZipFile as exc:
            raise DataError(f"{show(self.zip_path)}: not a valid zip archive ({exc}), although its checksum matches "
                            "the declaration; restore the original archive and its declared SHA-256") from None
        pairs = []
        for name in names:
            parts = PurePosixPath(name).parts
            if len(parts) != 3 or parts[0] != prefix:
                raise DataError(f"{show(self.zip_path)}: unexpected entry {name!r} (expected "
                                f"{prefix}/<class>/<image>); restore the original archive")
            pairs.append((parts[1], name))
        self.classes = sorted({c for c, _ in pairs})
        index = {c: i for i, c in enumerate(self.classes)}
        pairs.sort()
        self.entries = [name for _, name in pairs]
        self.targets = [index[c] for c, _ in pairs]
        self._zip: zipfile.ZipFile | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        i = operator.index(i)
        name = self.entries[i]
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.zip_path), os.getpid()
        with Image.open(io.BytesIO(self._zip.read(name))) as img:
            return img.convert("RGB"), self.targets[i]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_pid": None}

    def close(self) -> None:
        if self._zip is not None and self._pid == os.getpid():
            self._zip.close()
        self._zip = self._pid = None


class ArrayImageDataset(Sequence):
    """Images held in a uint8 array of shape (N, H, W, 3), with integer labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str]):
        self.images = images
        self.targets = [int(t) for t in labels]
        self.classes = classes

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        i = operator.index(i)
        return Image.fromarray(self.images[i]), self.targets[i]

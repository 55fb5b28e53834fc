"""Saving and loading model weights and small JSON records, verified by digest.

Only safetensors and JSON are ever read back. A folder saved with :func:`save_folder` carries a
digest manifest (:mod:`acbench.digest`), a single file saved with :func:`save_tensors` a
``.sha256`` sidecar; loading verifies first, so a damaged or replaced file is refused with an
:class:`ArtefactDamaged` error naming the file and what to delete or re-run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from acbench.digest import DigestMismatch, verify_manifest, verify_sidecar, write_manifest, write_sidecar
from acbench.errors import AcbenchError


class ArtefactDamaged(AcbenchError):
    """A saved model or cache differs from what was saved (or is not readable)."""


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in tensors.items()}


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """One safetensors file with a ``.sha256`` sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_contiguous(tensors), path)
    write_sidecar(path)


def load_tensors(path: Path, fix: str) -> dict[str, torch.Tensor]:
    """A file saved by :func:`save_tensors`, verified against its sidecar first."""
    try:
        verify_sidecar(path, fix)
    except DigestMismatch as exc:
        raise ArtefactDamaged(exc.message, exc.hint) from None
    return _read(path, fix)


def _read(path: Path, fix: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except Exception as exc:  # SafetensorError or OSError: not the file that was saved
        raise ArtefactDamaged(f"{path}: unreadable safetensors file ({' '.join(str(exc).split())})", fix) from None


def save_folder(folder: Path, tensors: dict[str, dict[str, torch.Tensor]], records: dict[str, Any]) -> None:
    """Write ``{file name: tensors}`` as safetensors and ``{file name: data}`` as JSON into ``folder``,
    then its manifest (so a folder without one was never completely written)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MANIFEST.json").unlink(missing_ok=True)
    for name, content in tensors.items():
        save_file(_contiguous(content), folder / name)
    for name, data in records.items():
        (folder / name).write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    write_manifest(folder)


def verify_folder(folder: Path, fix: str) -> None:
    try:
        verify_manifest(folder, fix)
    except DigestMismatch as exc:
        raise ArtefactDamaged(exc.message, exc.hint) from None


def load_folder_tensors(folder: Path, name: str, fix: str) -> dict[str, torch.Tensor]:
    """``folder/name`` (safetensors) of a folder already checked by :func:`verify_folder`."""
    return _read(folder / name, fix)


def load_folder_json(folder: Path, name: str, fix: str) -> Any:
    path = folder / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtefactDamaged(f"{path}: unreadable JSON ({exc})", fix) from None

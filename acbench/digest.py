"""SHA-256 digests of files and folders, and the digest manifest written beside a saved artefact.

A manifest (``<folder>/MANIFEST.json``: ``{"files": {relative path: sha256}}``) is written last
when an artefact folder (checkpoint, trained model, cache) is saved, and verified before any of its
files are read: a flipped byte, a truncated or replaced file, or a file added or removed since the
save is refused, naming the file. Provenance keys reuse :func:`file_sha256` and :func:`tree_sha256`.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from acbench.errors import AcbenchError

MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20


class DigestMismatch(AcbenchError):
    """A saved artefact differs from the manifest written when it was saved."""


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_under(folder: Path, skip: Iterable[str] = ()) -> list[Path]:
    skip = set(skip)
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.relative_to(folder).as_posix() not in skip
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def tree_digests(folder: Path | str, skip: Iterable[str] = ()) -> dict[str, str]:
    """{relative posix path: sha256} of every file under ``folder`` (hidden files and ``skip`` excluded)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in _files_under(folder, skip)}


def tree_sha256(folder: Path | str, skip: Iterable[str] = ()) -> str:
    """One digest of a folder's content: its files' relative paths and their SHA-256, in sorted order."""
    listing = "".join(f"{name}\0{sha}\n" for name, sha in sorted(tree_digests(folder, skip).items()))
    return bytes_sha256(listing.encode("utf-8"))


def write_manifest(folder: Path | str) -> Path:
    """Record the digest of every file in ``folder`` (call it after the last file is written)."""
    folder = Path(folder)
    path = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"files": tree_digests(folder, skip=[MANIFEST])}, indent=1, sort_keys=True),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def verify_manifest(folder: Path | str, fix: str) -> None:
    """Raise :class:`DigestMismatch` naming the file unless ``folder`` matches its manifest.

    ``fix`` says what to delete or re-run; it becomes the error's hint.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not isinstance(recorded, dict):
            raise ValueError("'files' is not a mapping")
    except FileNotFoundError:
        raise DigestMismatch(f"{path}: missing, so {folder} cannot be verified (saved by an older acbench "
                             f"or not completely written)", fix) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DigestMismatch(f"{path}: unreadable manifest ({exc})", fix) from None
    present = {p.relative_to(folder).as_posix() for p in _files_under(folder, skip=[MANIFEST])}
    for name in sorted(set(recorded) - present):
        raise DigestMismatch(f"{folder / name}: missing (listed in {MANIFEST})", fix)
    for name in sorted(present - set(recorded)):
        raise DigestMismatch(f"{folder / name}: not part of the saved artefact (absent from {MANIFEST})", fix)
    for name, want in sorted(recorded.items()):
        got = file_sha256(folder / name)
        if got != want:
            raise DigestMismatch(f"{folder / name}: damaged (SHA-256 {got[:12]}…, saved as {want[:12]}…)", fix)


def sidecar(path: Path | str) -> Path:
    """``<file>.sha256``: the digest of a single saved file that has no folder of its own."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_sidecar(path: Path | str) -> Path:
    """Record ``path``'s SHA-256 beside it (call after the file is completely written)."""
    target = sidecar(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(file_sha256(path) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def verify_sidecar(path: Path | str, fix: str) -> None:
    """Raise :class:`DigestMismatch` naming ``path`` unless it matches the digest recorded at save."""
    path, record = Path(path), sidecar(path)
    if not path.is_file():
        raise DigestMismatch(f"{path}: missing", fix)
    if not record.is_file():
        raise DigestMismatch(f"{record}: missing, so {path} cannot be verified (saved by an older acbench "
                             f"or not completely written)", fix)
    want = record.read_text(encoding="utf-8").strip()
    got = file_sha256(path)
    if got != want:
        raise DigestMismatch(f"{path}: damaged (SHA-256 {got[:12]}…, saved as {want[:12]}…)", fix)

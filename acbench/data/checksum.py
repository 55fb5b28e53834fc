"""File digests and checksum verification, remembered per process by (path, size, mtime)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from acbench.data.declaration import FileSpec
from acbench.data.errors import DataError, show

_CHUNK = 1 << 20
_verified: set[tuple] = set()


def new_hashers(spec: FileSpec) -> dict[str, "hashlib._Hash"]:
    """One hasher per checksum declared for ``spec``."""
    return {algo: hashlib.new(algo) for algo in spec.checksums}


def digest_stream(stream: BinaryIO, spec: FileSpec) -> dict[str, str]:
    """Hex digests of everything left in ``stream``, for the algorithms ``spec`` declares."""
    hashers = new_hashers(spec)
    while chunk := stream.read(_CHUNK):
        for h in hashers.values():
            h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashers.items()}


def mismatch(spec: FileSpec, actual: dict[str, str], size: int) -> str | None:
    """A description of how ``actual`` digests (of a file of ``size`` bytes) differ, or None."""
    bad = [f"{a} expected {d}, got {actual[a]}" for a, d in spec.checksums.items() if actual[a] != d]
    if spec.size is not None and size != spec.size:
        bad.append(f"size expected {spec.size} bytes, got {size}")
    return "; ".join(bad) or None


def _key(path: Path, spec: FileSpec) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, tuple(sorted(spec.checksums.items())))


def mark_verified(path: Path, spec: FileSpec) -> None:
    """Record that ``path`` (as it is now on disk) matches ``spec``."""
    _verified.add(_key(path, spec))


def verify_file(path: Path, spec: FileSpec, fix: str) -> None:
    """Raise DataError (naming ``path``, expected and actual sums, and ``fix``) unless ``path`` matches."""
    key = _key(path, spec)
    if key in _verified:
        return
    with open(path, "rb") as f:
        actual = digest_stream(f, spec)
    problem = mismatch(spec, actual, key[1])
    if problem:
        raise DataError(f"{show(path)}: checksum mismatch ({problem}). {fix}")
    _verified.add(key)


def forget_verified() -> None:
    """Drop the per-process verification memo (tests use it to force a re-check)."""
    _verified.clear()

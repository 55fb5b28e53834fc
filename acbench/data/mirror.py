"""Where dataset files come from: an explicit root, ``ACBENCH_DATA_ROOT``, the mirror beside the
checkout, or the download cache.

Order: the ``root`` argument, else the ``ACBENCH_DATA_ROOT`` environment variable, else the offline
mirror ``../shared/data`` beside the repository when it exists (where our machines and CI keep it; all
three are *mirrors*: read and verified, never written), else the cache (``ACBENCH_CACHE_DIR``,
default ``~/.cache/acbench/data``), filled from the declared public URLs. Every layout is
``<root>/<folder>/<file>``, the same as the offline data mirror's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from acbench import paths
from acbench.data.checksum import verify_file
from acbench.data.declaration import Declaration, FileSpec
from acbench.data.download import download
from acbench.data.errors import ENV_CACHE, ENV_ROOT, MIRROR_HINT, DataError, show

DEFAULT_CACHE = Path("~/.cache/acbench/data")


@dataclass(frozen=True)
class DataRoot:
    """A resolved data root; ``origin`` says where it came from, for error messages."""

    path: Path
    origin: str
    is_cache: bool


def cache_dir() -> Path:
    """The download cache: ``ACBENCH_CACHE_DIR`` if set, else ``~/.cache/acbench/data``."""
    return Path(os.environ.get(ENV_CACHE) or DEFAULT_CACHE).expanduser()


def beside_checkout() -> Path | None:
    """``../shared/data`` next to the repository root, when that folder exists."""
    candidate = paths.repo_root().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def data_root(root: Path | str | None = None) -> DataRoot:
    """Resolve the data root (see the module docstring for the order)."""
    if root is not None:
        found = DataRoot(Path(root).expanduser(), "the root= argument", False)
    elif os.environ.get(ENV_ROOT):
        found = DataRoot(Path(os.environ[ENV_ROOT]).expanduser(), ENV_ROOT, False)
    elif (mirror := beside_checkout()) is not None:
        return DataRoot(mirror.resolve(), f"the mirror beside the checkout ({mirror}; set {ENV_ROOT} to use "
                        "another)", False)
    else:
        return DataRoot(cache_dir(), f"the download cache ({ENV_CACHE} or {DEFAULT_CACHE})", True)
    if not found.path.is_dir():
        fix = f"fix or unset {ENV_ROOT}" if found.origin == ENV_ROOT else "pass an existing directory"
        raise DataError(f"{found.path}: data root from {found.origin} is not a directory; {fix}, "
                        "or leave both unset to download into the cache")
    return found


def fetch(decl: Declaration, spec: FileSpec, where: DataRoot) -> Path:
    """The verified local path of ``spec``; downloads it first when ``where`` is the cache."""
    path = where.path / decl.folder / spec.path
    if where.is_cache:
        if not path.exists():
            if spec.url is None:
                raise DataError(
                    f"{show(path)}: missing, and {decl.name}/{spec.path} has no public download URL "
                    f"({show(decl.path)}); {spec.obtain}; then place it at that path, or {MIRROR_HINT}."
                )
            return download(spec, path)
        fix = (f"The cached copy is damaged or from another version: delete {show(path)} so it is "
               f"downloaded again, or {MIRROR_HINT}.")
    else:
        if not path.exists():
            raise DataError(
                f"{show(path)}: missing. The data root {where.path} (from {where.origin}) must hold "
                f"{decl.folder}/{spec.path}: {spec.obtain} and place it there, point {ENV_ROOT} at a "
                f"complete mirror, or unset {ENV_ROOT} to download into the cache."
            )
        fix = (f"The mirror copy is damaged or a different version: replace it ({spec.obtain}), "
               f"point {ENV_ROOT} at a verified mirror, or unset it to download into the cache.")
    verify_file(path, spec, fix)
    return path

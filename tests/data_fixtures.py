"""Fixtures and helpers shared by the dataset-layer tests (``tests/test_data_*.py`` import them).

``data_root``: the real offline mirror, from ``ACBENCH_DATA_ROOT`` or ``<repo>/../shared/data``;
tests that need it are skipped when neither exists.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import yaml

from acbench.data import mirror
from acbench.data.checksum import forget_verified
from acbench.data.errors import ENV_CACHE, ENV_ROOT
from acbench.data.registry import datasets_dir

REPO = Path(__file__).resolve().parent.parent


def find_data_root() -> Path | None:
    """The real mirror, if this machine has one."""
    candidate = Path(os.environ[ENV_ROOT]) if os.environ.get(ENV_ROOT) else REPO.parent / "shared" / "data"
    return candidate if (candidate / "SHA256SUMS").is_file() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = find_data_root()
    if root is None:
        pytest.skip(f"no data mirror: set {ENV_ROOT} or provide {REPO.parent / 'shared' / 'data'}")
    return root


@pytest.fixture
def cache_env(monkeypatch, tmp_path) -> Path:
    """No ``ACBENCH_DATA_ROOT`` nor mirror beside the checkout, a fresh empty cache dir, and a fresh
    verification memo."""
    monkeypatch.delenv(ENV_ROOT, raising=False)
    monkeypatch.setattr(mirror, "beside_checkout", lambda: None)
    cache = tmp_path / "cache"
    monkeypatch.setenv(ENV_CACHE, str(cache))
    forget_verified()
    return cache


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_files(src_root: Path, folder: str, names: list[str], dest_root: Path) -> Path:
    """Copy ``names`` of ``src_root/folder`` into ``dest_root/folder``; returns that folder."""
    dest = dest_root / folder
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src_root / folder / name, dest / name)
    return dest


def override_declaration(name: str, dest_dir: Path, files: dict[str, Path] | None = None,
                         urls: dict[str, str] | None = None, **changes) -> Path:
    """Write a copy of ``datasets/<name>.yaml`` into ``dest_dir``.

    ``files`` maps declared paths to local files whose sha256/size replace the declared ones
    (md5 dropped); ``urls`` replaces URLs; other keyword arguments replace top-level fields.
    """
    data = yaml.safe_load((datasets_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    for entry in data["files"]:
        if files and entry["path"] in files:
            local = files[entry["path"]]
            entry.update(sha256=sha256(local), size=local.stat().st_size)
            entry.pop("md5", None)
        if urls and entry["path"] in urls:
            entry["url"] = urls[entry["path"]]
    data.update(changes)
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / f"{name}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out

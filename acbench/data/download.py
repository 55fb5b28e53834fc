"""Downloading one declared file into the cache: temp file, verify, atomic rename."""
from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from acbench.data.checksum import mark_verified, mismatch, new_hashers
from acbench.data.declaration import FileSpec
from acbench.data.errors import MIRROR_HINT, DataError, show

_CHUNK = 1 << 20
_TIMEOUT_S = 60


def download(spec: FileSpec, target: Path) -> Path:
    """Fetch ``spec.url`` to ``target``; nothing is left at ``target`` or beside it unless verified."""
    assert spec.url is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            size, actual = _copy(spec, out, target)
        problem = mismatch(spec, actual, size)
        if problem:
            raise DataError(
                f"{show(target)}: the download from {spec.url} failed its checksum ({problem}); "
                "nothing was kept. The upstream file may have changed or the transfer was corrupted: "
                f"retry, or {MIRROR_HINT}."
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache file is ordinary data
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    mark_verified(target, spec)
    return target


def _copy(spec: FileSpec, out, target: Path) -> tuple[int, dict[str, str]]:
    hashers = new_hashers(spec)
    size = 0
    request = urllib.request.Request(spec.url, headers={"User-Agent": "acbench-data"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            total = response.headers.get("Content-Length")
            with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=Path(spec.path).name, disable=None, leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DataError(
            f"{show(target)}: could not download {spec.url} ({exc}); check the network, "
            f"or {MIRROR_HINT}."
        ) from exc
    return size, {algo: h.hexdigest() for algo, h in hashers.items()}

"""Reading and writing a stage's ``metrics.json``.

Layout: ``{"metrics": {key: number}, "deterministic": [keys], "meta": {...}, "items": {...}}``;
``items`` indexes the stage's per-item records by SHA-256 (:mod:`acbench.items`). ``deterministic``
lists the keys that a rerun on any CPU reproduces exactly (counts, FLOPs); only those are gated
against the committed smoke reference. Timings and memory are measured, not gated.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from acbench.errors import AcbenchError

METRICS_FILE = "metrics.json"


class ResultsError(AcbenchError, ValueError):
    """A metrics file is missing or malformed."""


_deferred: list[tuple[Path, list[tuple[str, Path]]]] = []  # (folder, [(temporary file, target)]) per open stage


@contextlib.contextmanager
def deferred_writes(folder: Path) -> Iterator[None]:
    """Hold back every atomic write under ``folder`` until the block ends: on success each file is renamed
    into place (the stage's results appear together); on any exception, Ctrl-C included, the temporary files
    are removed and the results already in ``folder`` stay byte-identical. A kill leaves only hidden
    ``.*.tmp`` files, which the next run of the stage removes."""
    folder = Path(folder).resolve()
    if folder.is_dir():
        for stale in folder.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)
    pending: list[tuple[str, Path]] = []
    _deferred.append((folder, pending))
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _deferred.pop()
    for tmp, target in pending:
        if tmp is None:  # a deletion (remove_atomic)
            target.unlink(missing_ok=True)
        else:
            os.replace(tmp, target)


def _pending_for(path: Path) -> list[tuple[str, Path]] | None:
    resolved = path.resolve()
    for folder, pending in reversed(_deferred):
        if resolved.is_relative_to(folder):
            return pending
    return None


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
        pending = _pending_for(path)
        if pending is None:
            os.replace(tmp, path)
        else:
            for old in [t for t, p in pending if p == path.resolve()]:  # written twice: the last one counts
                Path(old).unlink(missing_ok=True)
            pending[:] = [(t, p) for t, p in pending if p != path.resolve()]
            pending.append((tmp, path.resolve()))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_atomic(path: Path) -> None:
    """Delete a file now, or (inside :func:`deferred_writes`) when the stage's results are committed, so an
    interrupted stage keeps its old files."""
    pending = _pending_for(Path(path))
    if pending is None:
        Path(path).unlink(missing_ok=True)
    else:
        pending.append((None, Path(path).resolve()))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file (inside
    :func:`deferred_writes`, the rename waits for the end of the stage)."""
    def write(fh):
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    _write_atomic(Path(path), write)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text like :func:`write_json_atomic`."""
    _write_atomic(Path(path), lambda fh: fh.write(text))


def write_metrics(out_dir: Path, metrics: dict[str, float], deterministic: list[str],
                  meta: dict[str, Any], items: dict[str, dict] | None = None) -> Path:
    """Write ``metrics.json``; ``items`` is the index :meth:`acbench.items.ItemLog.write` returned."""
    bad = [k for k, v in metrics.items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)]
    if bad:
        raise ResultsError(f"non-finite or non-numeric metrics: {bad}")
    unknown = sorted(set(deterministic) - set(metrics))
    if unknown:
        raise ResultsError(f"deterministic keys not among the metrics: {unknown}")
    from acbench import provenance

    prov = provenance.current()
    if prov is not None:
        meta = {**meta, "provenance": prov.as_meta()}
    path = out_dir / METRICS_FILE
    data = {"metrics": metrics, "deterministic": sorted(deterministic), "meta": meta}
    if items:
        data["items"] = items
    write_json_atomic(path, data)
    return path


def read_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ResultsError(f"{path}: no metrics file (run the stage first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise ResultsError(f"{path}: expected an object with a 'metrics' mapping")
    bad = sorted(k for k, v in data["metrics"].items()
                 if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v))
    if bad:
        raise ResultsError(f"{path}: metric {bad[0]!r} is {data['metrics'][bad[0]]!r}, not a finite number"
                           + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                           "re-run the stage that wrote it (results are written by acbench, not by hand)")
    data.setdefault("deterministic", [])
    data.setdefault("meta", {})
    data.setdefault("items", {})
    return data

"""Reading and writing a stage's ``metrics.json``.

Layout: ``{"metrics": {key: number}, "deterministic": [keys], "meta": {...}}``. ``deterministic``
lists the keys that a rerun on any CPU reproduces exactly (counts, FLOPs); only those are gated
against the committed smoke reference. Timings and memory are measured, not gated.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from acbench.errors import AcbenchError

METRICS_FILE = "metrics.json"


class ResultsError(AcbenchError, ValueError):
    """A metrics file is missing or malformed."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_metrics(out_dir: Path, metrics: dict[str, float], deterministic: list[str],
                  meta: dict[str, Any]) -> Path:
    bad = [k for k, v in metrics.items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)]
    if bad:
        raise ResultsError(f"non-finite or non-numeric metrics: {bad}")
    unknown = sorted(set(deterministic) - set(metrics))
    if unknown:
        raise ResultsError(f"deterministic keys not among the metrics: {unknown}")
    path = out_dir / METRICS_FILE
    write_json_atomic(path, {"metrics": metrics, "deterministic": sorted(deterministic), "meta": meta})
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
    return data

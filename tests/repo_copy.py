"""A throw-away copy of the repository's code and replication folders, run through `python -m acbench`
in a subprocess (the copy's own code is imported: its folder comes first on sys.path)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
COPIED = ("acbench", "methods", "datasets", "replications", "params.yaml")


def copy_repo(dest: Path, results: tuple[str, ...] = ()) -> Path:
    """Copy the code, the replication folders and the committed results under ``results`` (relative paths)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy(src, dest / name)
    for rel in results:
        shutil.copytree(REPO / rel, dest / rel)
    return dest


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def env(data_root: Path, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "ACBENCH_REPO_ROOT"}
    out.update({"ACBENCH_DATA_ROOT": str(data_root), "DVC_NO_ANALYTICS": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}, **extra)
    return out


def acbench(root: Path, data_root: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "acbench", *args], cwd=root, env=env(data_root),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def metrics(root: Path, profile: str, replication: str, stage: str) -> dict:
    return json.loads((root / "results" / profile / replication / stage / "metrics.json").read_text())

"""Under `dvc repro`, a stage that is killed or fails leaves the committed results byte-identical (DVC
deletes a stage's outputs before running it unless they persist; the runner replaces them only when
the stage finishes)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_fixtures import data_root  # noqa: F401
from repo_copy import acbench, copy_repo, edit_yaml, env

pytestmark = pytest.mark.slow

EFFICIENCY = "results/smoke/dynamic_head_pruning_kd/efficiency"
TEACHER = "results/smoke/uhkd/teacher"
DVC = str(Path(sys.executable).parent / "dvc")


def _snapshot(root: Path, stage: str = EFFICIENCY) -> dict[str, bytes]:
    """Every committed file of the stage folder (per-item records under items/ included), by path."""
    folder = root / stage
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def dvc_repo(tmp_path, data_root):  # noqa: F811
    (tmp_path / "repo").mkdir()
    root = copy_repo(tmp_path / "repo", results=(EFFICIENCY, TEACHER))
    edit_yaml(root / "params.yaml", lambda d: d.update(profile="smoke"))
    acbench(root, data_root, "pipeline")
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, check=True, env=env(data_root))
    return root


def _repro(root: Path, data_root: Path, stage: str = "dynamic_head_pruning_kd-efficiency") -> subprocess.Popen:
    return subprocess.Popen([DVC, "repro", "--single-item", stage], cwd=root,
                            env=env(data_root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def test_a_stage_killed_mid_run_leaves_committed_metrics_byte_identical(dvc_repo, data_root):  # noqa: F811
    before = _snapshot(dvc_repo)
    assert "metrics.json" in before and "table.md" in before and any(k.startswith("items/") for k in before)
    proc = _repro(dvc_repo, data_root)
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # the runner's progress line: DVC has prepared the stage, the stage is running
        if "[acbench] stage 1/1" in line or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert _snapshot(dvc_repo) == before


def test_a_stage_that_fails_leaves_committed_metrics_byte_identical(dvc_repo, tmp_path):
    """The README's first command without data: the teacher stage stops at its first file."""
    before = _snapshot(dvc_repo, TEACHER)
    assert "metrics.json" in before and any(k.startswith("items/") for k in before)
    (tmp_path / "empty").mkdir()
    proc = _repro(dvc_repo, tmp_path / "empty", "uhkd-teacher")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode != 0 and "missing" in out, out[-2000:]
    assert _snapshot(dvc_repo, TEACHER) == before

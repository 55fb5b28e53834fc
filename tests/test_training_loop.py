"""The shared trainer: resume after a real kill, two-process DDP, NaN stop, stale checkpoints."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from acbench.training import latest_checkpoint
from acbench.training.loop import KILL_ENV

SCRIPT = Path(__file__).parent / "scripts" / "train_tiny_solver.py"


def _run(args: list[str], env_extra: dict | None = None, torchrun: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, str(SCRIPT), *args]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}",
               str(SCRIPT), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("plain")
    proc = _run([str(tmp / "ckpt"), str(tmp / "out.json")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((tmp / "out.json").read_text())


def _assert_same(a: dict, b: dict, tol: float, weight_tol: float | None = None) -> None:
    assert len(a["losses"]) == len(b["losses"]) == 9  # 24 examples / batch 8 x 3 epochs
    assert a["losses"] == pytest.approx(b["losses"], rel=tol, abs=tol)
    assert a["weights"].keys() == b["weights"].keys()
    for key in a["weights"]:
        wt = tol if weight_tol is None else weight_tol
        assert a["weights"][key] == pytest.approx(b["weights"][key], rel=wt, abs=wt), key


def test_resume_after_kill_ends_like_an_uninterrupted_run(tmp_path, uninterrupted):
    killed = _run([str(tmp_path / "ckpt"), str(tmp_path / "out.json")], {KILL_ENV: "5"})
    assert killed.returncode == -signal.SIGKILL  # really killed, after step 5 (last checkpoint: step 4)
    assert not (tmp_path / "out.json").exists()
    assert json.loads((tmp_path / "ckpt" / "latest.json").read_text())["step"] == 4
    resumed = _run([str(tmp_path / "ckpt"), str(tmp_path / "out.json")])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["resumed_from"] == 4
    _assert_same(result, uninterrupted, 1e-6)


def test_two_process_ddp_matches_one_process(tmp_path, uninterrupted):
    proc = _run([str(tmp_path / "ckpt"), str(tmp_path / "out.json")], torchrun=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Losses (the metrics) agree to float precision. Weights get a looser bound: summing gradients in a
    # different order changes them by ~1e-9, and Adam turns gradients that are zero in exact arithmetic
    # (e.g. attention key biases, which softmax ignores) into steps of ±lr whose sign is that noise.
    _assert_same(json.loads((tmp_path / "out.json").read_text()), uninterrupted, 1e-5, weight_tol=5e-3)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    proc = _run([str(tmp_path / "ckpt"), str(tmp_path / "out.json"), "--nan-at", "6"])
    assert proc.returncode != 0
    assert "TrainingDiverged" in proc.stderr and "loss is nan (stopped before the update) at step 6 of 9" in proc.stderr
    assert "kept the last checkpoint with finite weights and loss, step 4" in proc.stderr
    assert "lower the learning rate (lr is 0.01)" in proc.stderr
    assert latest_checkpoint(tmp_path / "ckpt").name == "step-0000004"
    assert not (tmp_path / "out.json").exists()

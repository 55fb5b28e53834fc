"""Every run-time failure is one line naming the stage or file and the fix, exit code 2 (a failed
check is 1, a bug 3, Ctrl-C 130); ``--debug`` / ACBENCH_DEBUG=1 shows the traceback; one run per
stage at a time; unwritable folders are refused before anything runs."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import types
import zipfile

import pytest

import acbench.experiments as experiments
from acbench import stage_guard
from acbench.cli import main
from acbench.errors import StageLocked
from acbench.training import CheckpointError, TrainingDiverged
from engine_fixtures import REPLICATION, fake_repo  # noqa: F401

RUN = ["run", REPLICATION, "--stage", "efficiency", "--profile", "smoke"]
WHERE = f"acbench: {REPLICATION}/efficiency (profile smoke): "


@pytest.fixture
def stage(monkeypatch, fake_repo):  # noqa: F811
    """Replace the efficiency stage's run() by the test's own; returns a setter."""
    real = experiments.get_experiment(REPLICATION, "stages/efficiency.py")
    calls = []

    def use(run):
        module = types.SimpleNamespace(Config=real.Config, __file__=real.__file__,
                                       run=lambda config, out: (calls.append(out), run(config, out)))
        monkeypatch.setattr(experiments, "get_experiment", lambda replication, name: module)
        return calls
    return use


def _raise(exc):
    def run(config, out):
        raise exc
    return run


FAILURES = {
    "missing upstream": (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/solver.json"),
                         "/x/solver.json: not found (No such file or directory); run the stage that produces it first"),
    "damaged checkpoint": (CheckpointError("/c/step-4/model.safetensors: damaged", "delete /c to start over"),
                           "/c/step-4/model.safetensors: damaged; delete /c to start over"),
    "diverged": (TrainingDiverged("loss is nan at step 6", "lower the learning rate"),
                 "loss is nan at step 6; lower the learning rate"),
    "bad zip": (zipfile.BadZipFile("File is not a zip file"), "an archive is not a valid zip file"),
    "read-only": (PermissionError(errno.EACCES, "Permission denied", "/r/metrics.json"),
                  "/r/metrics.json: not writable (Permission denied); make the folder writable"),
}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_runtime_failure_is_one_line_exit_2(stage, capsys, name):
    exc, expected = FAILURES[name]
    stage(_raise(exc))
    assert main(RUN) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(WHERE) and expected in err and "Traceback" not in err


def test_safetensors_error_is_explained(stage, capsys):
    from safetensors import SafetensorError

    stage(_raise(SafetensorError("Error while deserializing header: HeaderTooLarge")))
    assert main(RUN) == 2
    assert "a safetensors file is damaged" in capsys.readouterr().err


def test_bug_is_exit_3_and_debug_shows_the_traceback(stage, capsys, monkeypatch):
    stage(_raise(TypeError("unsupported operand")))
    assert main(RUN) == 3
    err = capsys.readouterr().err
    assert "unexpected TypeError: unsupported operand" in err and "--debug" in err and "Traceback" not in err
    assert main(["--debug", *RUN]) == 3
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    monkeypatch.setenv("ACBENCH_DEBUG", "1")
    assert main(RUN) == 3
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_ctrl_c_is_one_line_exit_130(stage, capsys):
    stage(_raise(KeyboardInterrupt()))
    assert main(RUN) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("acbench: interrupted (Ctrl-C)") and "Traceback" not in "".join(err)


def test_second_run_of_a_stage_is_refused_naming_the_holder(stage, capsys):
    inner = []
    stage(lambda config, out: inner.append(main(RUN)) if not inner else None)
    assert main(RUN) == 0
    assert inner == [2]
    err = capsys.readouterr().err
    assert f"{REPLICATION}/efficiency is already running (pid {os.getpid()} on host" in err


def test_lock_of_a_killed_process_is_recovered(tmp_path):
    lock = tmp_path / ".stage.lock"
    code = (f"import os, signal; from acbench.stage_guard import stage_lock\n"
            f"with stage_lock(__import__('pathlib').Path({str(lock)!r}), 'r/s'):\n"
            f"    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9 and '"pid"' in lock.read_text()  # died holding it
    with stage_guard.stage_lock(lock, "r/s"):
        with pytest.raises(StageLocked, match=f"pid {os.getpid()}"):
            with stage_guard.stage_lock(lock, "r/s"):
                pass


def test_unwritable_results_folder_is_refused_before_the_stage_runs(stage, capsys, monkeypatch):
    calls = stage(lambda config, out: None)

    def refuse(dir, prefix):
        raise PermissionError(errno.EROFS, "Read-only file system", dir)
    monkeypatch.setattr(stage_guard.tempfile, "mkstemp", refuse)
    assert main(RUN) == 2
    err = capsys.readouterr().err
    assert "the results (dynamic_head_pruning_kd/efficiency) folder is not writable (Read-only file system)" in err
    assert "nothing was trained" in err and calls == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_folder_is_refused_before_the_stage_runs(stage, capsys, fake_repo):  # noqa: F811
    calls = stage(lambda config, out: None)
    out = fake_repo / "results" / "smoke" / REPLICATION / "efficiency"
    out.mkdir(parents=True)
    out.chmod(0o555)
    try:
        assert main(RUN) == 2
    finally:
        out.chmod(0o755)
    assert "not writable" in capsys.readouterr().err and calls == []


def test_non_numeric_metric_in_check_names_file_and_key(fake_repo, capsys):  # noqa: F811
    import json

    out = fake_repo / "results" / "cpu" / REPLICATION / "efficiency"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"metrics": {"params_reduction_pct_r30": "18.7"},
                                                  "deterministic": [], "meta": {}}))
    assert main(["check", "--profile", "cpu"]) == 2  # a damaged results file is an error, not a failed check
    err = capsys.readouterr().err
    assert f"{out / 'metrics.json'}: metric 'params_reduction_pct_r30' is '18.7', not a finite number" in err
    assert "re-run the stage that wrote it" in err

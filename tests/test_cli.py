"""The command line: help for every command, listing, and clear errors with exit code 2."""
import subprocess
import sys

import pytest

from acbench.cli import build_parser, main
from engine_fixtures import REPLICATION, edit_yaml, fake_repo  # noqa: F401

COMMANDS = ["list", "run", "report", "check", "reference", "data"]


def test_help_explains_every_command():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert f"\n    {command}" in text  # each command listed with its one-line help
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0


def test_entry_point_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "acbench", "--help"], capture_output=True, text=True, check=True)
    assert "dvc repro" in out.stdout


def test_list_shows_claims(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert REPLICATION in out and "params_reduction_30: 18.7%" in out


def test_bad_config_exits_2_with_the_field(fake_repo, capsys):
    params = fake_repo / "replications" / REPLICATION / "params.yaml"
    edit_yaml(params, lambda d: d["profiles"]["smoke"]["efficiency"]["latency"].update(repeats=0))
    assert main(["run", REPLICATION, "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "config error" in err and "profiles.smoke.efficiency.latency.repeats" in err


def test_unknown_stage(fake_repo, capsys):
    assert main(["run", REPLICATION, "--stage", "teacher"]) == 2
    assert "no stage 'teacher'" in capsys.readouterr().err


def test_several_stages_are_all_checked_before_any_runs(fake_repo, capsys):
    assert main(["run", REPLICATION, "--stage", "efficiency", "--stage", "teacher", "--profile", "smoke"]) == 2
    assert "no stage 'teacher'" in capsys.readouterr().err
    assert not (fake_repo / "results" / "smoke" / REPLICATION / "efficiency").exists()


def test_data_list_and_verify(capsys, tmp_path):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "math23k: Math23k" in out and "test 1,000" in out and "5 cross-validation folds" in out
    assert main(["data", "verify", "math23k", "--root", str(tmp_path)]) == 2  # an empty mirror
    err = capsys.readouterr().err
    assert "math23k/Math_23K.json: missing" in err and "ACBENCH_DATA_ROOT" in err

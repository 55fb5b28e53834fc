"""Config strictness: no bool or string where a number is expected, no key given twice, no unknown
key in the root params.yaml; each error names the file and the field or line."""
from __future__ import annotations

import pytest

from acbench.cli import main
from acbench.config import ConfigError, default_profile, load_replication, read_yaml
from acbench.training import TrainSettings
from engine_fixtures import REPLICATION, edit_yaml, fake_repo  # noqa: F401


@pytest.mark.parametrize("value", [True, False, "2"])
def test_number_fields_take_numbers_only(value):
    with pytest.raises(Exception, match="expected a number, not (bool|str)"):
        TrainSettings(epochs=value, batch_size=8, lr=0.1)
    assert TrainSettings(epochs=2, batch_size=8, lr=1).epochs == 2.0  # an int is a fine float


def test_bool_for_a_number_in_params_names_file_and_field(fake_repo, capsys):  # noqa: F811
    params = fake_repo / "replications" / REPLICATION / "params.yaml"
    edit_yaml(params, lambda d: d["profiles"]["smoke"]["efficiency"]["latency"].update(repeats=True))
    with pytest.raises(ConfigError) as err:
        load_replication(REPLICATION)
    assert str(params) in str(err.value)
    assert "profiles.smoke.efficiency.latency.repeats: Value error, expected a number, not bool, got True" in str(err.value)


def test_a_key_given_twice_names_file_and_both_lines(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a:\n  epochs: 1\n  lr: 0.1\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"p.yaml: line 4: key 'epochs' is given twice in one mapping "
                                          r"\(first at line 2\); keep one"):
        read_yaml(path)


def test_merge_keys_may_still_be_overridden(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\n")
    assert read_yaml(path)["use"] == {"x": 1, "y": 3}


def test_duplicate_key_in_a_dataset_declaration_is_refused(tmp_path):
    from acbench.data import DataError
    from acbench.data.declaration import load_declaration

    path = tmp_path / "d.yaml"
    path.write_text("name: x\nname: y\n")
    with pytest.raises(DataError, match="line 2: key 'name' is given twice"):
        load_declaration(path)


def test_misspelled_root_key_is_an_error_not_cpu(fake_repo, capsys):  # noqa: F811
    (fake_repo / "params.yaml").write_text("profle: smoke\n")
    with pytest.raises(ConfigError, match=r"params.yaml: 1 invalid field.*\n  profle: Extra inputs are not permitted"):
        default_profile()
    assert main(["check"]) == 2
    assert "profle" in capsys.readouterr().err
    (fake_repo / "params.yaml").write_text("profile: smoke\n")
    assert default_profile() == "smoke"

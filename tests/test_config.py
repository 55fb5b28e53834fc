"""Replication folders load and validate; every bad config names the file, the field and the problem."""
import pytest

from acbench.config import ConfigError, default_profile, list_replications, load_replication
from acbench.paths import PROFILES
from engine_fixtures import REPLICATION, edit_yaml, fake_repo  # noqa: F401


def test_real_replication_loads_with_all_profiles():
    rep = load_replication(REPLICATION)
    assert set(rep.params.profiles) == set(PROFILES)
    cpu = rep.stage_config("efficiency", "cpu")
    assert (cpu.model.num_layers, cpu.model.num_heads, cpu.model.hidden) == (12, 12, 768)
    assert cpu.ratios == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]  # `common` merged in
    assert {c.id for c in rep.published.claims} >= {"params_reduction_30", "flops_reduction_30", "speedup_30"}


def test_list_and_default_profile(fake_repo):
    assert list_replications() == [REPLICATION]
    assert default_profile() == "cpu"
    (fake_repo / "params.yaml").write_text("profile: gpu\n")
    with pytest.raises(ConfigError, match=r"params.yaml: 1 invalid field.*\n  profile: Input should be 'smoke', 'cpu' or 'paper', got 'gpu'"):
        default_profile()


def _params(root):
    return root / "replications" / REPLICATION / "params.yaml"


def _published(root):
    return root / "replications" / REPLICATION / "published.yaml"


@pytest.mark.parametrize("change,pattern", [
    (lambda d: d["profiles"].pop("paper"), r"profiles \['paper'\] missing"),
    (lambda d: d["profiles"]["cpu"]["efficiency"].update(ratioz=[0.1]),
     r"profiles\.cpu\.efficiency\.ratioz: Extra inputs are not permitted"),
    (lambda d: d["profiles"]["smoke"]["efficiency"].update(ratios=[0.0, 1.5]),
     r"profiles\.smoke\.efficiency\.ratios: Value error, every ratio must be in \[0, 1\)"),
    (lambda d: d["profiles"]["cpu"]["efficiency"]["model"].update(num_heads="twelve"),
     r"profiles\.cpu\.efficiency\.model\.num_heads: Value error, expected a number, not str, got 'twelve'"),
    (lambda d: d["stages"].update(efficiency="no_such_experiment"),
     r"stages\.efficiency: unknown experiment 'no_such_experiment'"),
    (lambda d: d["profiles"]["cpu"].update(train={}), r"profiles\.cpu: stages \['train'\] are not declared"),
])
def test_bad_params_name_file_and_field(fake_repo, change, pattern):
    edit_yaml(_params(fake_repo), change)
    with pytest.raises(ConfigError, match=pattern) as err:
        load_replication(REPLICATION)
    assert str(_params(fake_repo)) in str(err.value)


def _first_claim(d):
    return d["claims"][0]


@pytest.mark.parametrize("change,pattern", [
    (lambda d: _first_claim(d).update(direction="up"),
     r"claims\.0\.direction: Input should be 'match', 'higher_is_better' or 'lower_is_better'"),
    (lambda d: _first_claim(d).pop("tolerance"), r"claims\.0\.tolerance: Field required"),
    (lambda d: _first_claim(d).update(tolerance=-1), r"claims\.0\.tolerance: Input should be greater than or equal to 0"),
    (lambda d: _first_claim(d).update(profiles=["cpu", "gpu"]), r"claims\.0\.profiles\.1: Input should be"),
    (lambda d: d["claims"].append(dict(d["claims"][0])), r"claim ids must be unique"),
    (lambda d: _first_claim(d)["result"].update(stage="train"),
     r"claims\[params_reduction_30\]\.result\.stage: 'train' is not a stage"),
])
def test_bad_published_names_file_and_field(fake_repo, change, pattern):
    edit_yaml(_published(fake_repo), change)
    with pytest.raises(ConfigError, match=pattern) as err:
        load_replication(REPLICATION)
    assert str(_published(fake_repo)) in str(err.value)


def test_unreadable_files(fake_repo):
    with pytest.raises(ConfigError, match=r"no replication folder .*nonexistent \(known: dynamic_head_pruning_kd\)"):
        load_replication("nonexistent")
    _published(fake_repo).write_text("claims: [unclosed\n")
    with pytest.raises(ConfigError, match=r"published.yaml: not valid YAML"):
        load_replication(REPLICATION)
    _published(fake_repo).write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"published.yaml: expected a mapping at the top level, got list"):
        load_replication(REPLICATION)
    _published(fake_repo).unlink()
    with pytest.raises(ConfigError, match=r"published.yaml: file not found"):
        load_replication(REPLICATION)

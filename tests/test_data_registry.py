"""Registry: dataset discovery and loading loaders by file path, on a throw-away repository root."""
from __future__ import annotations

import shutil
import sys

import pytest

from acbench.data import DataError, get_declaration, list_datasets, load_split
from acbench.data.registry import datasets_dir, get_loader
from data_fixtures import REPO, data_root  # noqa: F401  (fixture)


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    for suffix in (".yaml", ".py"):
        shutil.copy(REPO / "datasets" / f"asdiv_a{suffix}", tmp_path / "datasets" / f"asdiv_a{suffix}")
    (tmp_path / "datasets" / "table.yaml").write_text("- not: a declaration\n")
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    monkeypatch.delitem(sys.modules, "acbench_datasets.asdiv_a", raising=False)
    return tmp_path / "datasets"


def test_repo_datasets_dir_is_next_to_the_package():
    assert datasets_dir() == REPO / "datasets"


def test_only_yaml_with_loader_is_a_dataset(fake_root):
    assert list_datasets() == ["asdiv_a"]
    with pytest.raises(DataError, match=r"table\.yaml: has no loader .*table\.py, so it is not a dataset"):
        get_declaration("table")
    with pytest.raises(DataError, match="'../x' is not a dataset name"):
        get_declaration("../x")


def test_loader_is_imported_from_its_path(fake_root, data_root):
    module = get_loader("asdiv_a")
    assert module.__name__ == "acbench_datasets.asdiv_a" and module.__file__ == str(fake_root / "asdiv_a.py")
    assert get_loader("asdiv_a") is module
    assert len(load_split("asdiv_a", "valid", data_root)) == 122


def test_broken_loaders_name_the_file(fake_root):
    (fake_root / "asdiv_a.py").write_text("def not_load():\n    pass\n")
    with pytest.raises(DataError, match=r"asdiv_a\.py: defines no load\(split, files, \*, fold, declaration\)"):
        get_loader("asdiv_a")
    (fake_root / "asdiv_a.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(DataError, match=r"asdiv_a\.py: the loader failed to import \(ModuleNotFoundError"):
        get_loader("asdiv_a")
    assert "acbench_datasets.asdiv_a" not in sys.modules

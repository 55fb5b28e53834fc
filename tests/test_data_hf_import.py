"""``datasets/`` (our declarations) must not shadow the Hugging Face ``datasets`` library."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

from data_fixtures import REPO


def test_datasets_folder_is_not_a_package():
    assert (REPO / "datasets").is_dir()
    assert not (REPO / "datasets" / "__init__.py").exists()


def test_import_datasets_from_repo_root_gives_hugging_face():
    code = ("import datasets, sys; assert hasattr(datasets, 'load_dataset'), datasets.__file__; "
            "print(datasets.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "site-packages" in out.stdout


def test_in_process_spec_is_hugging_face():
    spec = importlib.util.find_spec("datasets")
    assert spec.origin and spec.origin.endswith("__init__.py") and "site-packages" in spec.origin


def test_loaders_do_not_register_a_datasets_module():
    from acbench.data.registry import get_loader

    module = get_loader("math23k")
    assert module.__name__ == "acbench_datasets.math23k"
    assert sys.modules.get("datasets") is None or "site-packages" in (sys.modules["datasets"].__file__ or "")

"""Discovery of ``datasets/*.yaml`` declarations and their ``datasets/<name>.py`` loaders.

A dataset is a pair ``datasets/<name>.yaml`` + ``datasets/<name>.py``; other YAML files in the
folder (data tables kept next to the declarations) are not datasets.

``datasets/`` at the repository root has no ``__init__.py`` on purpose: ``import datasets`` must
keep giving the Hugging Face library. Loaders are therefore imported from their file path and
registered in ``sys.modules`` as ``acbench_datasets.<name>``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from acbench import paths
from acbench.data.declaration import NAME_PATTERN, Declaration, load_declaration
from acbench.data.errors import DataError, show

MODULE_PREFIX = "acbench_datasets."
_declarations: dict[tuple[str, int], Declaration] = {}


def datasets_dir() -> Path:
    """``<repo root>/datasets`` (the repository root is the parent of the ``acbench`` package)."""
    return paths.repo_root() / "datasets"


def list_datasets() -> list[str]:
    """Names of all datasets (a ``<name>.yaml`` with a ``<name>.py`` beside it), sorted."""
    folder = datasets_dir()
    return sorted(p.stem for p in folder.glob("*.yaml") if p.with_suffix(".py").is_file())


def get_declaration(name: str) -> Declaration:
    """The validated declaration ``datasets/<name>.yaml`` (re-read when the file changes)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise DataError(f"{show(datasets_dir())}: {name!r} is not a dataset name; use one of {list_datasets()}")
    path = datasets_dir() / f"{name}.yaml"
    if not path.is_file():
        raise DataError(f"{show(path)}: no such dataset declaration; known datasets: {list_datasets()}")
    if not path.with_suffix(".py").is_file():
        raise DataError(f"{show(path)}: has no loader {show(path.with_suffix('.py'))}, so it is not a "
                        f"dataset; add the loader, or use one of {list_datasets()}")
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _declarations:
        _declarations[key] = load_declaration(path)
    return _declarations[key]


def get_loader(name: str) -> ModuleType:
    """The loader module ``datasets/<name>.py``; it must define ``load(split, files, *, fold, declaration)``."""
    path = datasets_dir() / f"{name}.py"
    module_name = MODULE_PREFIX + name
    module = sys.modules.get(module_name)
    if module is not None and Path(module.__file__ or "") == path:
        return module
    if not path.is_file():
        raise DataError(f"{show(path)}: loader missing for the declared dataset {name!r}; create it")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise DataError(f"{show(path)}: the loader failed to import ({type(exc).__name__}: {exc}); fix it") from exc
    if not callable(getattr(module, "load", None)):
        del sys.modules[module_name]
        raise DataError(f"{show(path)}: defines no load(split, files, *, fold, declaration) function; add it")
    return module

"""The public entry points: resolve a dataset's files and load one split."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from acbench.data.declaration import Declaration, load_declaration
from acbench.data.errors import DataError, show
from acbench.data.mirror import data_root, fetch
from acbench.data.registry import get_declaration, get_loader


class SplitFiles(dict):
    """``{declared path: verified local path}`` for one split; a missing key is a DataError."""

    def __init__(self, declaration: Declaration, items: dict[str, Path]):
        super().__init__(items)
        self.declaration = declaration

    def __missing__(self, key: str) -> Path:
        raise DataError(f"{show(self.declaration.path)}: the loader needs {key!r}, which this split "
                        "does not list; add it to the split's files")


def _declaration(name: str, declaration: Declaration | Path | str | None) -> Declaration:
    if declaration is None:
        return get_declaration(name)
    decl = declaration if isinstance(declaration, Declaration) else load_declaration(declaration)
    if decl.name != name:
        raise DataError(f"{show(decl.path)}: declares dataset {decl.name!r}, not {name!r}; pass the matching file")
    return decl


def resolve_files(name: str, root: Path | str | None = None, *,
                  declaration: Declaration | Path | str | None = None) -> dict[str, Path]:
    """All files of dataset ``name`` as ``{declared path: verified local path}``.

    ``root`` (else ``ACBENCH_DATA_ROOT``) is a read-only mirror; with neither, files are downloaded
    into the cache. ``declaration`` replaces ``datasets/<name>.yaml`` (a path or a Declaration).
    """
    decl = _declaration(name, declaration)
    where = data_root(root)
    return {spec.path: fetch(decl, spec, where) for spec in decl.files}


def load_split(name: str, split: str, root: Path | str | None = None, *, fold: int | None = None,
               declaration: Declaration | Path | str | None = None) -> Sequence:
    """Load ``split`` of dataset ``name`` (fold ``fold`` for cross-validation splits).

    Only the files the split reads are fetched and verified. The result's length is checked
    against the declared split size.
    """
    decl = _declaration(name, declaration)
    size, needed = decl.split(split, fold)
    where = data_root(root)
    files = SplitFiles(decl, {p: fetch(decl, decl.file(p), where) for p in needed})
    items = get_loader(name).load(split, files, fold=fold, declaration=decl)
    if len(items) != size:
        label = split if fold is None else f"{split} (fold {fold})"
        raise DataError(
            f"{', '.join(show(p) for p in files.values())}: split {label} of {name} has {len(items)} "
            f"items, but {show(decl.path)} declares {size}; the files do not match the declaration: "
            "restore verified copies or correct the declared size"
        )
    return items

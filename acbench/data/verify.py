"""``acbench data verify``: check every declared file that is present, list the absent ones apart.

Covers every declaration in ``datasets/`` (datasets and pretrained checkpoints such as
``resnet_cifar10.yaml``). Nothing is downloaded and nothing is written: a file is *intact* (its
checksums and size match), *damaged* (they do not; the message names the file and the fix) or
*absent* (not at ``<root>/<folder>/<file>``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from acbench.data.checksum import verify_file
from acbench.data.declaration import Declaration
from acbench.data.errors import DataError, show
from acbench.data.mirror import DataRoot, data_root
from acbench.data.registry import datasets_dir, get_declaration, load_declaration


@dataclass
class Verification:
    root: DataRoot
    intact: dict[str, list[str]] = field(default_factory=dict)   # declaration -> files
    absent: dict[str, list[str]] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)             # one message per file

    @property
    def present(self) -> int:
        return sum(map(len, self.intact.values())) + len(self.damaged)


def declaration_names() -> list[str]:
    """Every declaration in ``datasets/``: datasets and checkpoint declarations alike."""
    return sorted(p.stem for p in datasets_dir().glob("*.yaml"))


def _declaration(name: str) -> Declaration:
    path = datasets_dir() / f"{name}.yaml"
    if path.is_file() and not path.with_suffix(".py").is_file():
        return load_declaration(path)  # a checkpoint declaration (no loader)
    return get_declaration(name)


def verify(names: list[str] | None = None, root: Path | str | None = None) -> Verification:
    where = data_root(root)
    known = declaration_names()
    for name in names or []:
        if name not in known:
            raise DataError(f"{show(datasets_dir())}: no declaration {name!r}; known: {known}")
    result = Verification(where)
    for name in names or known:
        decl = _declaration(name)
        for spec in decl.files:
            path = where.path / decl.folder / spec.path
            if not path.is_file():
                result.absent.setdefault(name, []).append(f"{decl.folder}/{spec.path}")
                continue
            try:
                verify_file(path, spec, f"replace it ({spec.obtain})")
            except DataError as exc:
                result.damaged.append(str(exc))
            else:
                result.intact.setdefault(name, []).append(spec.path)
    return result


def report(result: Verification) -> list[str]:
    """The lines ``acbench data verify`` prints."""
    lines = [f"data root: {result.root.path} (from {result.root.origin})"]
    for name, files in sorted(result.intact.items()):
        lines.append(f"{name}: {len(files)} file(s) intact")
    if result.absent:
        lines.append(f"absent (not checked; {sum(map(len, result.absent.values()))} file(s)):")
        lines += [f"  {name}: {', '.join(files)}" for name, files in sorted(result.absent.items())]
    if result.damaged:
        lines.append(f"DAMAGED ({len(result.damaged)} file(s)):")
        lines += [f"  {message}" for message in result.damaged]
    return lines

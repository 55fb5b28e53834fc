"""Dataset declarations (``datasets/<name>.yaml``): loading and validation.

Fields: ``name`` (= the file name), ``folder`` (under the data root), ``title``, ``source``,
``licence``, ``citation``, optional ``notes``;

- ``files``: list of ``{path, url, sha256 and/or md5, size?, how_to_get?, checksum_source?}``;
  ``url: null`` needs ``how_to_get``; every declared checksum is verified;
- ``splits``: ``{split: {size, files}}``, ``files`` listing the declared paths the split reads;
- ``folds`` (optional): ``{count, splits: {split: {sizes: [one per fold], files}}}``, where
  ``{fold}`` in a file name stands for the fold index.

Validation errors name the YAML file, the field and what was expected.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from acbench.config import DuplicateKey, load_yaml_text
from acbench.data.errors import DataError, show

FOLD_FIELD = "{fold}"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
_HEX_DIGITS = {"sha256": 64, "md5": 32}
_TOP_KEYS = {"name", "folder", "title", "source", "licence", "citation", "notes", "files", "splits", "folds"}
_FILE_KEYS = {"path", "size", "sha256", "md5", "url", "how_to_get", "checksum_source"}
_URL_SCHEMES = ("https://", "http://", "file://")


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, relative to the dataset folder."""

    path: str
    url: str | None
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    how_to_get: str | None = None
    checksum_source: str | None = None

    @property
    def checksums(self) -> dict[str, str]:
        """Declared digests by algorithm name (``sha256`` and/or ``md5``)."""
        return {a: d for a, d in (("sha256", self.sha256), ("md5", self.md5)) if d}

    @property
    def obtain(self) -> str:
        """How a user gets this file: its URL, else the declared instructions."""
        return f"download it from {self.url}" if self.url else f"obtain it as follows: {self.how_to_get}"


@dataclass(frozen=True)
class SplitSpec:
    """A split's expected size and the files it reads (``{fold}`` filled in for fold splits)."""

    sizes: tuple[int, ...]
    files: tuple[str, ...]


@dataclass(frozen=True)
class Declaration:
    """A validated ``datasets/<name>.yaml``."""

    path: Path
    name: str
    folder: str
    title: str
    source: str
    licence: str
    citation: str
    files: tuple[FileSpec, ...]
    splits: dict[str, SplitSpec]
    fold_count: int = 0
    fold_splits: dict[str, SplitSpec] = field(default_factory=dict)
    notes: str = ""

    def file(self, path: str) -> FileSpec:
        """The declared file ``path``."""
        for spec in self.files:
            if spec.path == path:
                return spec
        raise DataError(f"{show(self.path)}: files: no entry with path {path!r}; declare it under files")

    def split(self, split: str, fold: int | None = None) -> tuple[int, tuple[str, ...]]:
        """(expected size, file paths) of ``split``, or of ``split`` in fold ``fold``."""
        where = show(self.path)
        if fold is None:
            if split not in self.splits:
                raise DataError(
                    f"{where}: {self.name} has no split {split!r}; use one of {sorted(self.splits)}"
                    + (f", or a fold split {sorted(self.fold_splits)} with fold=0..{self.fold_count - 1}"
                       if self.fold_count else "")
                )
            spec = self.splits[split]
            return spec.sizes[0], spec.files
        if not self.fold_count:
            raise DataError(f"{where}: {self.name} declares no cross-validation folds; call without fold=")
        if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < self.fold_count:
            raise DataError(f"{where}: fold must be an int in 0..{self.fold_count - 1}, got {fold!r}")
        if split not in self.fold_splits:
            raise DataError(f"{where}: {self.name} folds have no split {split!r}; use one of {sorted(self.fold_splits)}")
        spec = self.fold_splits[split]
        return spec.sizes[fold], tuple(f.replace(FOLD_FIELD, str(fold)) for f in spec.files)


class _Checker:
    """Field accessors that raise DataError naming the file and the field."""

    def __init__(self, path: Path):
        self.where = show(path)

    def fail(self, field_name: str, expected: str, got: Any) -> DataError:
        shown = repr(got)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return DataError(f"{self.where}: {field_name}: expected {expected}, got {shown}")

    def mapping(self, value: Any, field_name: str, allowed: set[str] | None = None) -> dict:
        if not isinstance(value, dict):
            raise self.fail(field_name, "a mapping", value)
        unknown = sorted(set(value) - allowed) if allowed else []
        if unknown:
            raise self.fail(field_name, f"only the keys {sorted(allowed)} (typo?)", unknown)
        return value

    def text(self, data: dict, key: str, prefix: str = "", optional: bool = False) -> str | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(prefix + key, "a non-empty string", value)
        return value.strip()

    def count(self, value: Any, field_name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(field_name, "a non-negative integer", value)
        return value

    def rel_path(self, value: Any, field_name: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(field_name, "a relative file path", value)
        p = PurePosixPath(value)
        if p.is_absolute() or ".." in p.parts or "\\" in value or str(p) != value:
            raise self.fail(field_name, "a normalised relative path without '..'", value)
        return value


def _file_spec(c: _Checker, raw: Any, i: int) -> FileSpec:
    pre = f"files[{i}]."
    data = c.mapping(raw, f"files[{i}]", _FILE_KEYS)
    path = c.rel_path(data.get("path"), pre + "path")
    if "url" not in data:
        raise c.fail(pre + "url", "a URL, or null together with how_to_get", "<missing>")
    url = data["url"]
    if url is not None and (not isinstance(url, str) or not url.startswith(_URL_SCHEMES)):
        raise c.fail(pre + "url", f"null or a URL starting with one of {list(_URL_SCHEMES)}", url)
    sums = {}
    for algo, digits in _HEX_DIGITS.items():
        if data.get(algo) is not None:
            value = data[algo]
            if not isinstance(value, str) or not re.fullmatch(f"[0-9a-fA-F]{{{digits}}}", value):
                raise c.fail(pre + algo, f"{digits} hex characters", value)
            sums[algo] = value.lower()
    if not sums:
        raise c.fail(pre + "sha256", "a checksum (sha256, or md5 where no SHA-256 is published)", None)
    return FileSpec(
        path=path,
        url=url,
        sha256=sums.get("sha256"),
        md5=sums.get("md5"),
        size=None if data.get("size") is None else c.count(data["size"], pre + "size"),
        how_to_get=c.text(data, "how_to_get", pre, optional=url is not None),
        checksum_source=c.text(data, "checksum_source", pre, optional=True),
    )


def _split_spec(c: _Checker, raw: Any, field_name: str, declared: set[str], folds: int) -> SplitSpec:
    size_key = "sizes" if folds else "size"
    data = c.mapping(raw, field_name, {size_key, "files"})
    if folds:
        sizes = data.get("sizes")
        if not isinstance(sizes, list) or len(sizes) != folds:
            raise c.fail(f"{field_name}.sizes", f"a list of {folds} sizes (one per fold)", sizes)
        sizes = tuple(c.count(s, f"{field_name}.sizes[{k}]") for k, s in enumerate(sizes))
    else:
        sizes = (c.count(data.get("size"), f"{field_name}.size"),)
    files = data.get("files")
    if not isinstance(files, list) or not files:
        raise c.fail(f"{field_name}.files", "a non-empty list of paths declared under files", files)
    for j, f in enumerate(files):
        if not isinstance(f, str):
            raise c.fail(f"{field_name}.files[{j}]", "a path string", f)
        for k in range(max(folds, 1)):
            concrete = f.replace(FOLD_FIELD, str(k))
            if concrete not in declared:
                raise c.fail(f"{field_name}.files[{j}]", "a path declared under files", concrete)
    return SplitSpec(sizes=sizes, files=tuple(files))


def parse_declaration(data: Any, path: Path) -> Declaration:
    """Validate the parsed YAML ``data`` of ``path``."""
    c = _Checker(path)
    data = c.mapping(data, "<top level>", _TOP_KEYS)
    name = c.text(data, "name")
    if not NAME_PATTERN.fullmatch(name) or name != path.stem:
        raise c.fail("name", f"the file name {path.stem!r} (lowercase letters, digits, _)", name)
    folder = c.rel_path(data.get("folder"), "folder")
    raw_files = data.get("files")
    if not isinstance(raw_files, list) or not raw_files:
        raise c.fail("files", "a non-empty list of files", raw_files)
    files = tuple(_file_spec(c, raw, i) for i, raw in enumerate(raw_files))
    declared = [f.path for f in files]
    if len(set(declared)) != len(declared):
        raise c.fail("files", "distinct paths", sorted(p for p in declared if declared.count(p) > 1))
    splits = {
        str(k): _split_spec(c, v, f"splits.{k}", set(declared), 0)
        for k, v in c.mapping(data.get("splits"), "splits").items()
    }
    if not splits:
        raise c.fail("splits", "at least one split", {})
    fold_count, fold_splits = 0, {}
    if data.get("folds") is not None:
        folds = c.mapping(data["folds"], "folds", {"count", "splits"})
        fold_count = c.count(folds.get("count"), "folds.count")
        if fold_count < 1:
            raise c.fail("folds.count", "at least 1", fold_count)
        fold_splits = {
            str(k): _split_spec(c, v, f"folds.splits.{k}", set(declared), fold_count)
            for k, v in c.mapping(folds.get("splits"), "folds.splits").items()
        }
    return Declaration(
        path=path,
        name=name,
        folder=folder,
        title=c.text(data, "title"),
        source=c.text(data, "source"),
        licence=c.text(data, "licence"),
        citation=c.text(data, "citation"),
        files=files,
        splits=splits,
        fold_count=fold_count,
        fold_splits=fold_splits,
        notes=c.text(data, "notes", optional=True) or "",
    )


def load_declaration(path: Path | str) -> Declaration:
    """Read and validate one declaration YAML file."""
    path = Path(path)
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{show(path)}: declaration not found; create it or check the dataset name") from None
    except DuplicateKey as exc:
        raise DataError(f"{show(path)}: {exc}") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{show(path)}: not valid YAML ({' '.join(str(exc).split())}); fix the syntax") from None
    return parse_declaration(data, path)

"""Dataset declarations: schema validation, checksums against the mirror, provenance fields."""
from __future__ import annotations

import re

import pytest
import yaml

from acbench.data import DataError, get_declaration, list_datasets, load_declaration
from acbench.data.registry import datasets_dir
from data_fixtures import data_root  # noqa: F401  (fixture)

MIRRORED = {"math23k": "math23k", "asdiv_a": "asdiv-a", "cifar10_jpeg": "cifar10-jpeg"}


def test_all_declarations_validate():
    assert list_datasets() == ["asdiv_a", "cifar10", "cifar100", "cifar10_jpeg", "math23k"]
    for name in list_datasets():
        decl = get_declaration(name)
        assert decl.licence and decl.citation and decl.source and decl.title
        assert (datasets_dir() / f"{name}.py").is_file()
        for spec in decl.files:
            assert spec.url or spec.how_to_get, spec.path


def test_github_urls_pin_full_commits():
    for name in list_datasets():
        for spec in get_declaration(name).files:
            if spec.url and "githubusercontent" in spec.url:
                assert re.search(r"/[0-9a-f]{40}/", spec.url), spec.url


def test_declared_checksums_equal_mirror_sha256sums(data_root):
    sums = {}
    for line in (data_root / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        sums[rel.strip()] = digest
    for name, folder in MIRRORED.items():
        decl = get_declaration(name)
        assert decl.folder == folder
        declared = {f"{folder}/{s.path}": s for s in decl.files}
        assert set(declared) == {k for k in sums if k.startswith(folder + "/")}
        for rel, spec in declared.items():
            assert spec.sha256 == sums[rel], rel
            assert spec.size == (data_root / rel).stat().st_size, rel


def test_download_only_datasets_declare_both_checksums():
    for name in ("cifar10", "cifar100"):
        (spec,) = get_declaration(name).files
        assert spec.url.startswith("https://www.cs.toronto.edu/~kriz/")
        assert len(spec.sha256) == 64 and len(spec.md5) == 32 and spec.checksum_source


def _write(tmp_path, name, change):
    data = yaml.safe_load((datasets_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "datasets" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


BAD_FIELDS = [
    (lambda d: d["files"][0].update(sha256="abc"), "files[0].sha256: expected 64 hex characters, got 'abc'"),
    (lambda d: d["files"][1].update(how_to_get=None), "files[1].how_to_get: expected a non-empty string"),
    (lambda d: d["files"][0].update(url="ftp://x"), "files[0].url: expected null or a URL"),
    (lambda d: d["files"][0].update(sha256=None), "files[0].sha256: expected a checksum"),
    (lambda d: d["files"][0].update(path="../x.json"), "files[0].path: expected a normalised relative path"),
    (lambda d: d["splits"]["test"].update(size=-1), "splits.test.size: expected a non-negative integer"),
    (lambda d: d["splits"]["test"].update(files=["nope.txt"]), "splits.test.files[0]: expected a path declared"),
    (lambda d: d.update(licence=""), "licence: expected a non-empty string"),
    (lambda d: d.update(license="typo"), "<top level>: expected only the keys"),
    (lambda d: d.update(name="other"), "name: expected the file name 'math23k'"),
]


@pytest.mark.parametrize("change, message", BAD_FIELDS)
def test_bad_field_names_file_field_and_expectation(tmp_path, change, message):
    path = _write(tmp_path, "math23k", change)
    with pytest.raises(DataError) as err:
        load_declaration(path)
    assert str(err.value).startswith(f"{path}: "), str(err.value)
    assert message in str(err.value)


def test_bad_fold_declaration(tmp_path):
    path = _write(tmp_path, "asdiv_a", lambda d: d["folds"]["splits"]["test"].update(sizes=[1, 2]))
    with pytest.raises(DataError, match=r"folds\.splits\.test\.sizes: expected a list of 5 sizes"):
        load_declaration(path)


def test_invalid_yaml_and_missing_declaration(tmp_path):
    bad = tmp_path / "math23k.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(DataError, match="not valid YAML.*fix the syntax"):
        load_declaration(bad)
    with pytest.raises(DataError, match=r"datasets/nope\.yaml: no such dataset declaration"):
        get_declaration("nope")


def test_unknown_split_and_fold_errors_name_the_declaration():
    decl = get_declaration("math23k")
    with pytest.raises(DataError, match=r"datasets/math23k\.yaml: math23k has no split 'dev'"):
        decl.split("dev")
    with pytest.raises(DataError, match="declares no cross-validation folds"):
        decl.split("train", fold=0)
    asdiv = get_declaration("asdiv_a")
    with pytest.raises(DataError, match=r"fold must be an int in 0\.\.4, got 5"):
        asdiv.split("train", fold=5)
    with pytest.raises(DataError, match="folds have no split 'valid'"):
        asdiv.split("valid", fold=0)
    assert asdiv.split("test", fold=4) == (266, ("testset_fold4.json",))

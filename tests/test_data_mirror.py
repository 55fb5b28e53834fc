"""Root resolution, verification, downloads and error messages of the dataset layer."""
from __future__ import annotations

import json
import os

import pytest

from acbench.data import DataError, get_declaration, list_datasets, load_split, resolve_files
from acbench.data import checksum
from data_fixtures import cache_env, copy_files, data_root, override_declaration, sha256  # noqa: F401

ASDIV_TEST = "testset.json"


def test_missing_file_names_path_url_and_env_var(data_root, tmp_path):
    copy_files(data_root, "math23k", ["test_ids.txt", "valid_ids.txt"], tmp_path)
    with pytest.raises(DataError) as err:
        load_split("math23k", "test", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "math23k" / "Math_23K.json") in msg
    assert get_declaration("math23k").file("Math_23K.json").url in msg
    assert "ACBENCH_DATA_ROOT" in msg and "root= argument" in msg


def test_missing_derived_file_gives_how_to_get(data_root, tmp_path):
    copy_files(data_root, "math23k", ["Math_23K.json"], tmp_path)
    with pytest.raises(DataError, match=r"test_ids\.txt: missing.*Graph2Tree.*ACBENCH_DATA_ROOT"):
        load_split("math23k", "test", tmp_path)


def test_wrong_checksum_names_path_sums_and_fix(data_root, tmp_path):
    folder = copy_files(data_root, "asdiv-a", [ASDIV_TEST], tmp_path)
    raw = bytearray((folder / ASDIV_TEST).read_bytes())
    raw[100] ^= 0x01
    (folder / ASDIV_TEST).write_bytes(bytes(raw))
    with pytest.raises(DataError) as err:
        load_split("asdiv_a", "test", tmp_path)
    msg = str(err.value)
    assert str(folder / ASDIV_TEST) in msg
    assert get_declaration("asdiv_a").file(ASDIV_TEST).sha256 in msg
    assert sha256(folder / ASDIV_TEST) in msg
    assert "replace it" in msg and "ACBENCH_DATA_ROOT" in msg


def test_verification_is_cached_by_path_size_and_mtime(data_root, tmp_path, monkeypatch):
    folder = copy_files(data_root, "asdiv-a", [ASDIV_TEST], tmp_path)
    checksum.forget_verified()
    calls = []
    real = checksum.digest_stream
    monkeypatch.setattr(checksum, "digest_stream", lambda *a: calls.append(1) or real(*a))
    load_split("asdiv_a", "test", tmp_path)
    load_split("asdiv_a", "test", tmp_path)
    assert len(calls) == 1
    os.utime(folder / ASDIV_TEST, ns=(0, 10**9))
    load_split("asdiv_a", "test", tmp_path)
    assert len(calls) == 2


def _malformed(data_root, tmp_path, name, folder, file, drop_key, index=3):
    src = copy_files(data_root, folder, [file], tmp_path / "root") / file
    records = json.loads(src.read_text(encoding="utf-8"))
    del records[index][drop_key]
    src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return src, override_declaration(name, tmp_path / "decl", files={file: src})


def test_math23k_record_without_equation(data_root, tmp_path):
    src, decl = _malformed(data_root, tmp_path, "math23k", "math23k", "Math_23K.json", "equation")
    with pytest.raises(DataError) as err:
        load_split("math23k", "all", tmp_path / "root", declaration=decl)
    msg = str(err.value)
    assert msg.startswith(f"{src}: record 3 (id='4') has no 'equation' field")
    assert "restore the original file" in msg


def test_asdiv_record_without_formula(data_root, tmp_path):
    src, decl = _malformed(data_root, tmp_path, "asdiv_a", "asdiv-a", ASDIV_TEST, "Formula", index=0)
    with pytest.raises(DataError, match=r"record 0 \(@ID='nluds-0760'\) has no 'Formula' field"):
        load_split("asdiv_a", "test", tmp_path / "root", declaration=decl)


def test_wrong_split_size_names_files_and_declaration(data_root, tmp_path):
    import yaml

    decl = override_declaration("asdiv_a", tmp_path)
    data = yaml.safe_load(decl.read_text())
    data["splits"]["test"]["size"] = 121
    decl.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match=r"testset\.json: split test of asdiv_a has 122 items, but .* declares 121"):
        load_split("asdiv_a", "test", data_root, declaration=decl)


def test_root_argument_beats_env_var_and_env_var_beats_cache(data_root, tmp_path, monkeypatch, cache_env):
    monkeypatch.setenv("ACBENCH_DATA_ROOT", str(data_root))
    assert len(load_split("asdiv_a", "valid")) == 122
    assert not cache_env.exists()
    with pytest.raises(DataError, match="root= argument"):
        load_split("asdiv_a", "valid", tmp_path)
    monkeypatch.setenv("ACBENCH_DATA_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere: data root from ACBENCH_DATA_ROOT is not a directory"):
        load_split("asdiv_a", "valid")


def test_resolve_files_returns_verified_paths(data_root):
    files = resolve_files("asdiv_a", data_root)
    assert set(files) == {s.path for s in get_declaration("asdiv_a").files}
    assert files[ASDIV_TEST] == data_root / "asdiv-a" / ASDIV_TEST


def _source(data_root, tmp_path, corrupt=False):
    src = copy_files(data_root, "asdiv-a", [ASDIV_TEST], tmp_path / "upstream") / ASDIV_TEST
    decl = override_declaration("asdiv_a", tmp_path / "decl", urls={ASDIV_TEST: src.as_uri()})
    if corrupt:
        src.write_text(src.read_text().replace("marbles", "marbleZ"))
    return src, decl


def test_download_into_cache_verifies_and_renames(data_root, tmp_path, cache_env, monkeypatch):
    src, decl = _source(data_root, tmp_path)
    problems = load_split("asdiv_a", "test", declaration=decl)
    assert len(problems) == 122
    target = cache_env / "asdiv-a" / ASDIV_TEST
    assert target.read_bytes() == src.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == [ASDIV_TEST]
    monkeypatch.setattr("acbench.data.mirror.download", lambda *a: pytest.fail("downloaded twice"))
    assert len(load_split("asdiv_a", "test", declaration=decl)) == 122


def test_corrupted_download_leaves_no_file(data_root, tmp_path, cache_env):
    src, decl = _source(data_root, tmp_path, corrupt=True)
    with pytest.raises(DataError) as err:
        load_split("asdiv_a", "test", declaration=decl)
    msg = str(err.value)
    assert src.as_uri() in msg and "failed its checksum" in msg and "nothing was kept" in msg
    assert get_declaration("asdiv_a").file(ASDIV_TEST).sha256 in msg
    assert list((cache_env / "asdiv-a").iterdir()) == []


def test_unreachable_url_leaves_no_file(tmp_path, cache_env):
    decl = override_declaration("asdiv_a", tmp_path / "decl",
                                urls={ASDIV_TEST: (tmp_path / "absent.json").as_uri()})
    with pytest.raises(DataError, match="could not download .*absent.json.*ACBENCH_DATA_ROOT"):
        load_split("asdiv_a", "test", declaration=decl)
    assert list((cache_env / "asdiv-a").iterdir()) == []


def test_damaged_cache_file_says_delete_it(data_root, tmp_path, cache_env):
    src, decl = _source(data_root, tmp_path)
    load_split("asdiv_a", "test", declaration=decl)
    target = cache_env / "asdiv-a" / ASDIV_TEST
    target.write_bytes(target.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"checksum mismatch.*delete .*testset\.json"):
        load_split("asdiv_a", "test", declaration=decl)


def test_no_url_in_cache_mode_says_how_to_get(cache_env):
    with pytest.raises(DataError, match=r"train\.zip: missing.*no public download URL.*ACBENCH_DATA_ROOT"):
        load_split("cifar10_jpeg", "train")


def _snapshot(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
                  for p in [root, *root.rglob("*")])


def test_nothing_is_written_into_the_mirror(data_root, monkeypatch, cache_env):
    before = _snapshot(data_root)
    checksum.forget_verified()
    for name in ("math23k", "asdiv_a", "cifar10_jpeg"):
        decl = get_declaration(name)
        for split in decl.splits:
            load_split(name, split, data_root)
        for split in decl.fold_splits:
            for k in range(decl.fold_count):
                load_split(name, split, data_root, fold=k)
    monkeypatch.setenv("ACBENCH_DATA_ROOT", str(data_root))
    for name in list_datasets():
        if name in ("cifar10", "cifar100"):
            with pytest.raises(DataError, match="missing"):
                resolve_files(name)
        else:
            resolve_files(name)
    assert _snapshot(data_root) == before
    assert not cache_env.exists()

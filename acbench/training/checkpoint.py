"""Checkpoints as safetensors: model, optimizer and extra tensors, plus a small JSON of the rest.

Layout of a checkpoint directory ``<root>/step-<n>/``: ``model.safetensors``,
``optimizer.safetensors`` (every tensor of the optimizer state, flattened), ``extra.safetensors``
(caller state such as a pruner's averages and the torch RNG), ``state.json`` (step, scheduler,
optimizer hyper-parameters, caller metadata). ``<root>/latest.json`` names the newest complete one;
it is replaced atomically after the directory is fully written, so a kill at any moment leaves the
previous checkpoint usable. Older checkpoints are deleted once the new pointer is in place.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

LATEST = "latest.json"


class CheckpointError(RuntimeError):
    pass


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
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
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
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(json.dumps({"checkpoint": target.name, "step": step}), encoding="utf-8")
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
        raise CheckpointError(f"{pointer} is unreadable ({exc}); delete {root} to start over") from exc
    path = Path(root) / name
    if not (path / "state.json").is_file():
        raise CheckpointError(f"{pointer} names {path}, which is incomplete; delete {root} to start over")
    return path


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler=None) -> tuple[dict, dict[str, torch.Tensor]]:
    """Load a checkpoint into the given objects; returns (state.json content, extra tensors)."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    missing, unexpected = model.load_state_dict(load_file(path / "model.safetensors"), strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: model does not match the checkpoint "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(_unflatten_optimizer(load_file(path / "optimizer.safetensors"), state["optimizer"]))
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    return state, load_file(path / "extra.safetensors")

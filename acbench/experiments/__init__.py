"""Experiments: the code a replication stage runs. One module per experiment.

Each experiment module defines ``Config`` (a pydantic model: the stage's params, validated on load)
and ``run(config, out_dir, claims) -> dict`` that writes ``metrics.json`` (and tables/plots) into
``out_dir``. A replication's ``params.yaml`` maps its stage names to experiment names listed here.
"""
from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS = {
    "head_pruning_efficiency": "acbench.experiments.head_pruning_efficiency",
}


def get_experiment(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r} (known: {sorted(EXPERIMENTS)})")
    return importlib.import_module(EXPERIMENTS[name])

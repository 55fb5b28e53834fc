"""Experiments: the code a replication stage runs. One module per experiment.

Each experiment module defines ``Config`` (a pydantic model: the stage's params, validated on load)
and ``run(config, out_dir) -> dict`` that writes ``metrics.json`` (and a Markdown table) into
``out_dir``; optionally ``plot(config, metrics, claims, out_dir) -> list[Path]``, which the report
stage calls to draw the results with the published points marked. A replication's ``params.yaml``
maps its stage names to experiment names listed here.
"""
from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS = {
    "head_pruning_efficiency": "acbench.experiments.head_pruning_efficiency",
    "mwp_teacher": "acbench.experiments.mwp_teacher",
    "mwp_prune_only": "acbench.experiments.mwp_prune_only",
    "mwp_student": "acbench.experiments.mwp_student",
    "mwp_summary": "acbench.experiments.mwp_summary",
    "attn_student": "acbench.experiments.attn_student",
    "attn_pruning_curve": "acbench.experiments.attn_pruning_curve",
    "attn_summary": "acbench.experiments.attn_summary",
    "cifar_teacher": "acbench.experiments.cifar_teacher",
    "cifar_kd": "acbench.experiments.cifar_kd",
    "cifar_summary": "acbench.experiments.cifar_summary",
}


def get_experiment(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r} (known: {sorted(EXPERIMENTS)})")
    return importlib.import_module(EXPERIMENTS[name])

"""Experiments: the code a replication stage runs, found from the stage's line in ``params.yaml``.

A stage line ``<stage>: <experiment>`` names one of two things:

- a file of the replication's own folder, a path ending in ``.py`` such as ``stages/summary.py``
  (code only that replication uses: its summaries, its paper's own recipe), imported as
  ``replications.<name>.stages.summary`` (so files of one folder import each other relatively);
- a shared engine experiment by name (:data:`EXPERIMENTS`): trainers any replication on the same
  task can name unchanged (``mwp.teacher`` trains an MWP solver, ``cifar.teacher`` / ``cifar.kd``
  train a CIFAR teacher and distil students from it with methods chosen by name).

Either way the module defines ``Config`` (a pydantic model: the stage's params, validated on load)
and ``run(config, out_dir) -> dict`` that writes ``metrics.json`` (and a Markdown table) into
``out_dir``; optionally ``plot(config, metrics, claims, out_dir) -> list[Path]``, which the report
stage calls to draw the results with the published points marked.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

EXPERIMENTS = {
    "mwp.teacher": "acbench.experiments.mwp.teacher",
    "cifar.teacher": "acbench.experiments.cifar.teacher",
    "cifar.kd": "acbench.experiments.cifar.kd",
}

class ExperimentError(ValueError):
    """A stage names no known engine experiment and no file of its replication folder."""


def is_local(experiment: str) -> bool:
    """Whether ``experiment`` names a file of the replication folder (``stages/<module>.py``)."""
    return experiment.endswith(".py")


def module_name(replication: str, experiment: str) -> str:
    """The import name of the module that runs ``experiment`` for ``replication``."""
    if is_local(experiment):
        parts = experiment[: -len(".py")].split("/")
        if not all(part.isidentifier() for part in parts):
            raise ExperimentError(f"{experiment!r}: a stage file is a path inside the replication folder "
                                  f"whose parts are Python names, such as stages/summary.py")
        dotted = experiment[: -len(".py")].replace("/", ".")
        return f"replications.{replication}.{dotted}"
    if experiment not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment {experiment!r}: name a file of the replication folder "
                              f"(stages/<module>.py) or an engine experiment ({sorted(EXPERIMENTS)})")
    return EXPERIMENTS[experiment]


def check_experiment(replication: str, experiment: str) -> None:
    """Raise :class:`ExperimentError` when ``experiment`` cannot be found (without importing it)."""
    name = module_name(replication, experiment)
    try:
        found = importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ExperimentError(f"{experiment!r}: no module {name} (expected the file "
                              f"replications/{replication}/{experiment}, importable from the repository root)")


def get_experiment(replication: str, experiment: str) -> ModuleType:
    return importlib.import_module(module_name(replication, experiment))

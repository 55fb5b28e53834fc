"""What a stage writes, as declared by its experiment module (read by the pipeline and by provenance).

Module attributes, all optional:
- ``CHECKPOINTS``: ``"model"`` when the stage's checkpoint folder holds a product that later stages read
  (a teacher); ``"runs"`` when it holds finished-run records and resume state only (kept across runs);
  absent when the stage writes no checkpoints;
- ``TABLE``: True when the stage writes ``table.md`` beside ``metrics.json``;
- ``ITEMS``: True when the stage writes per-item records into ``items/``;
- ``PLOTS``: file names that the experiment's ``plot()`` draws into the stage folder (report stage).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Literal

METRICS = "metrics.json"
TABLE_FILE = "table.md"
ITEMS_DIR = "items"


@dataclass(frozen=True)
class StageOutputs:
    checkpoints: Literal["model", "runs"] | None
    table: bool
    items: bool
    plots: tuple[str, ...]


def outputs_of(experiment: ModuleType) -> StageOutputs:
    checkpoints = getattr(experiment, "CHECKPOINTS", None)
    if checkpoints not in (None, "model", "runs"):
        raise ValueError(f"{experiment.__file__}: CHECKPOINTS must be 'model', 'runs' or absent, got {checkpoints!r}")
    plots = tuple(getattr(experiment, "PLOTS", ()))
    if plots and not callable(getattr(experiment, "plot", None)):
        raise ValueError(f"{experiment.__file__}: declares PLOTS {plots} but defines no plot() function")
    return StageOutputs(checkpoints, bool(getattr(experiment, "TABLE", False)),
                        bool(getattr(experiment, "ITEMS", False)), plots)

"""What stages share: where a stage finds its sibling stages' results (and its checkpoints), (a finished run's key: ``acbench.provenance.run_key``)."""
from __future__ import annotations

import statistics
from pathlib import Path

from acbench.paths import checkpoint_dir  # noqa: F401  (re-exported: the stages import it from here)


def sibling_stage(out_dir: Path, stage: str) -> Path:
    """The results folder of another stage of the same replication and profile."""
    return Path(out_dir).parent / stage


def seed_summary(name: str, accuracies: list[float]) -> dict[str, float]:
    """``<name>.accuracy.mean``, ``.accuracy.std`` (0 for one seed) and ``<name>.seeds`` of per-seed accuracies."""
    return {f"{name}.accuracy.mean": statistics.fmean(accuracies),
            f"{name}.accuracy.std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            f"{name}.seeds": len(accuracies)}

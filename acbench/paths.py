"""Where things live in the repository (one place, so tests can point the engine elsewhere)."""
from __future__ import annotations

import os
from pathlib import Path

PROFILES = ("smoke", "cpu", "paper")


def repo_root() -> Path:
    """The repository root: ``ACBENCH_REPO_ROOT`` if set, else the parent of the ``acbench`` package."""
    override = os.environ.get("ACBENCH_REPO_ROOT")
    return Path(override).resolve() if override else Path(__file__).resolve().parent.parent


def replications_dir() -> Path:
    return repo_root() / "replications"


def results_dir() -> Path:
    return repo_root() / "results"


def stage_dir(profile: str, replication: str, stage: str) -> Path:
    """Folder of one stage's committed outputs: ``results/<profile>/<replication>/<stage>/``."""
    return results_dir() / profile / replication / stage


def checkpoint_dir(out_dir: Path) -> Path:
    """``checkpoints/<profile>/<replication>/<stage>`` (git-ignored; a DVC output) for a stage writing to
    ``results/<profile>/…``; ``<out_dir>/checkpoints`` for any other output folder."""
    out = Path(out_dir).resolve()
    results = results_dir().resolve()
    if out.is_relative_to(results):
        return repo_root() / "checkpoints" / out.relative_to(results)
    return out / "checkpoints"


def stage_checkpoint_dir(profile: str, replication: str, stage: str) -> Path:
    """Folder of one stage's checkpoints (git-ignored; a DVC output): ``checkpoints/<profile>/<replication>/<stage>/``."""
    return repo_root() / "checkpoints" / profile / replication / stage

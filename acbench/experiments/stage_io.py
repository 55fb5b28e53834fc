"""What stages share: where a stage finds its sibling stages' results (and its checkpoints), (a finished run's key: ``acbench.provenance.run_key``)."""
from __future__ import annotations

from pathlib import Path

from acbench.paths import checkpoint_dir  # noqa: F401  (re-exported: the stages import it from here)


def sibling_stage(out_dir: Path, stage: str) -> Path:
    """The results folder of another stage of the same replication and profile."""
    return Path(out_dir).parent / stage

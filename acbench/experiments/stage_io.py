"""What stages share: where a stage finds its sibling stages' results (and its checkpoints), the key of a finished run."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from acbench.paths import checkpoint_dir  # noqa: F401  (re-exported: the stages import it from here)


def fingerprint(config) -> str:
    return hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def sibling_stage(out_dir: Path, stage: str) -> Path:
    """The results folder of another stage of the same replication and profile."""
    return Path(out_dir).parent / stage

"""A throw-away repository root (replication folder copied from the real one) for engine tests."""
import shutil
from pathlib import Path

import pytest
import yaml

from acbench.results import write_metrics

REAL_ROOT = Path(__file__).resolve().parent.parent
REPLICATION = "dynamic_head_pruning_kd"


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    src = REAL_ROOT / "replications" / REPLICATION
    dst = tmp_path / "replications" / REPLICATION
    dst.mkdir(parents=True)
    for name in ("params.yaml", "published.yaml"):
        shutil.copy(src / name, dst / name)
    (tmp_path / "params.yaml").write_text("profile: cpu\n")
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    return tmp_path


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def published_values(root: Path) -> dict[str, float]:
    """The published value of every claim that a stage measures, keyed by its metric key."""
    data = yaml.safe_load((root / "replications" / REPLICATION / "published.yaml").read_text())
    return {c["result"]["key"]: c["value"] for c in data["claims"] if c.get("result")}


def write_stage_metrics(root: Path, profile: str, metrics: dict[str, float],
                        deterministic: list[str] | None = None) -> Path:
    out = root / "results" / profile / REPLICATION / "efficiency"
    return write_metrics(out, metrics, deterministic or [], {"synthetic": True})

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
    _efficiency_only(dst)
    (tmp_path / "params.yaml").write_text("profile: cpu\n")
    monkeypatch.setenv("ACBENCH_REPO_ROOT", str(tmp_path))
    return tmp_path


def _efficiency_only(folder: Path) -> None:
    """Keep the replication's `efficiency` stage and its claims: engine tests write that stage's
    metrics only (the trained stages have their own tests)."""
    def params(data):
        data["stages"] = {"efficiency": data["stages"]["efficiency"]}
        data.pop("pipeline", None)  # its groups run trained stages
        data["common"] = {k: v for k, v in data["common"].items() if k == "efficiency"}
        data["profiles"] = {p: {"efficiency": stages["efficiency"]} for p, stages in data["profiles"].items()}

    def stages_of(claim):
        refs = [claim.get("result")] + [v for k, v in (claim.get("compare") or {}).items() if k in ("a", "b", "reference")]
        refs += [r for pair in (claim.get("compare") or {}).get("pairs") or [] for r in pair]
        return {r["stage"] for r in refs if r}

    def published(data):
        data["claims"] = [c for c in data["claims"] if stages_of(c) <= {"efficiency"}]
        data["floors"] = [f for f in data.get("floors", []) if f["result"]["stage"] == "efficiency"]

    edit_yaml(folder / "params.yaml", params)
    edit_yaml(folder / "published.yaml", published)


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

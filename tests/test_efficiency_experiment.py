"""The architecture-claims experiment at the smoke geometry: real removal, real counts, real outputs."""
import json
import shutil

import pytest

from acbench.cli import main
from acbench.config import load_replication
from replications.dynamic_head_pruning_kd.stages.efficiency import removed_params_closed_form
from replications.dynamic_head_pruning_kd.stages.efficiency_plot import plot_efficiency
from engine_fixtures import REAL_ROOT, REPLICATION


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``acbench run`` then ``acbench report`` at the smoke profile, in a throw-away repository root."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(REAL_ROOT / "replications" / REPLICATION, root / "replications" / REPLICATION)
    (root / "params.yaml").write_text("profile: smoke\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACBENCH_REPO_ROOT", str(root))
        assert main(["run", REPLICATION, "--stage", "efficiency"]) == 0
        assert main(["report"]) == 0
        config = load_replication(REPLICATION).stage_config("efficiency", "smoke")
    out = root / "results" / "smoke" / REPLICATION / "efficiency"
    return config, out, json.loads((out / "metrics.json").read_text())["metrics"]


def test_outputs_written(smoke_run):
    config, out, metrics = smoke_run
    data = json.loads((out / "metrics.json").read_text())
    assert all(not k.startswith(("latency", "speedup", "peak")) for k in data["deterministic"])
    assert "params_reduction_pct.whole_model@0.30" in data["deterministic"]
    assert (out / "table.md").read_text().count("\n| ") == len(config.ratios)  # one row per ratio
    report = (out.parents[2] / "REPORT.md").read_text()
    assert "![efficiency (smoke)](smoke/dynamic_head_pruning_kd/efficiency/efficiency.png)" in report
    assert (out / "efficiency.png").stat().st_size > 10_000


def test_plot_marks_published_points(smoke_run, tmp_path):
    config, _, metrics = smoke_run
    claims = [c for c in load_replication(REPLICATION).published.claims if c.result and c.result.stage == "efficiency"]
    marked = plot_efficiency(config, metrics, claims, tmp_path / "efficiency.png")
    assert sorted(marked) == [("flops_reduction_30", 30.0, 19.3), ("params_reduction_30", 30.0, 18.7),
                              ("speedup_30", 30.0, 27.5)]
    assert (tmp_path / "efficiency.png").stat().st_size > 10_000


def test_counts_follow_the_closed_form(smoke_run):
    config, _, m = smoke_run
    g = config.model
    base = m["params.whole_model@0.00"]
    for ratio in config.ratios:
        t = f"{ratio:.2f}"
        k = round(ratio * g.num_layers * g.num_heads)
        assert m[f"heads_removed@{t}"] == k
        assert base - m[f"params.whole_model@{t}"] == removed_params_closed_form(g, k)
        # the attention group keeps the output-projection biases, which no head owns
        attention = m["params.attention@0.00"]
        assert m[f"params_reduction_pct.attention@{t}"] == pytest.approx(
            100 * removed_params_closed_form(g, k) / attention)
        assert attention - m[f"params.attention@{t}"] == removed_params_closed_form(g, k)


def test_flops_fall_with_every_ratio(smoke_run):
    config, _, m = smoke_run
    flops = [m[f"flops@{r:.2f}"] for r in config.ratios]
    assert all(a > b for a, b in zip(flops, flops[1:]))
    assert m["flops_reduction_pct@0.00"] == 0.0 and m["speedup_pct.b1_s16@0.00"] == 0.0


def test_every_timing_round_is_recorded_for_paired_intervals(smoke_run):
    """Per-round times of every shape and ratio go to items/ (round i of all ratios was timed together),
    and they reproduce the stage's median latency."""
    from acbench.items import read_records

    config, out, metrics = smoke_run
    index = json.loads((out / "metrics.json").read_text())["items"]
    assert len(index) == len(config.latency_shapes) * len(config.ratios)
    for shape in config.latency_shapes:
        for ratio in config.ratios:
            rows = read_records(out, index, f"latency.{shape.tag}@{ratio:.2f}")
            seconds = sorted(float(r["seconds"]) for r in rows)
            assert [int(r["round"]) for r in rows] == list(range(config.latency.repeats))
            median = (seconds[(len(seconds) - 1) // 2] + seconds[len(seconds) // 2]) / 2
            assert 1e3 * median == pytest.approx(metrics[f"latency_ms.{shape.tag}@{ratio:.2f}"])

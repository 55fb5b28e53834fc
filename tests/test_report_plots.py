"""Drawing the stages' plots for the report: results written before provenance keys whose metrics lack what
the current plot needs are skipped with a warning; results with provenance that lack it are a bug and raise."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from acbench import paths
from acbench.config import load_replication
from acbench.report.plots import draw_plots

STAGE = "efficiency"  # its plot reads params_reduction_pct.<part>@<ratio> from the metrics


def _write(root, meta):
    folder = root / "results" / "cpu" / "dynamic_head_pruning_kd" / STAGE
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"metrics": {"lead": 1.0}, "deterministic": [], "meta": meta}))
    return folder


@pytest.fixture
def replication(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "results_dir", lambda: tmp_path / "results")
    rep = load_replication("dynamic_head_pruning_kd")
    return SimpleNamespace(name=rep.name, published=rep.published, stage_config=rep.stage_config,
                           params=SimpleNamespace(stages={STAGE: rep.params.stages[STAGE]}))  # this stage only


def test_pre_provenance_results_that_lack_a_plotted_value_are_skipped(tmp_path, replication, capsys):
    _write(tmp_path, {})
    assert draw_plots([replication], "cpu") == []
    assert f"dynamic_head_pruning_kd/{STAGE} at cpu not drawn: its metrics lack 'params_reduction_pct.whole_model@0.00'" in \
        capsys.readouterr().err


def test_results_with_provenance_that_lack_a_plotted_value_raise(tmp_path, replication):
    _write(tmp_path, {"provenance": {"code_digest": "x"}})
    with pytest.raises(KeyError, match="params_reduction_pct"):
        draw_plots([replication], "cpu")

"""Drawing each stage's plots (published points marked) for one profile, before the report links them."""
from __future__ import annotations

from pathlib import Path

from acbench import paths
from acbench.config import Replication
from acbench.experiments import get_experiment
from acbench.report.verdict import metrics_path
from acbench.results import read_metrics


def draw_plots(replications: list[Replication], profile: str) -> list[Path]:
    """Call ``plot`` of every stage's experiment that has results at ``profile``; return the files."""
    drawn = []
    for rep in replications:
        for stage, experiment_name in rep.params.stages.items():
            experiment = get_experiment(rep.name, experiment_name)
            path = metrics_path(profile, rep.name, stage)
            if not hasattr(experiment, "plot") or not path.is_file():
                continue
            claims = [c for c in rep.published.claims if c.result and c.result.stage == stage]
            drawn += experiment.plot(rep.stage_config(stage, profile), read_metrics(path)["metrics"],
                                     claims, paths.stage_dir(profile, rep.name, stage))
    return drawn

"""Drawing each stage's plots (published points marked) for one profile, before the report links them.

A stage whose results predate provenance keys (no ``meta.provenance``; the report lists them as not
traceable) and lack a value its current plot needs is skipped with a one-line warning naming the stage
and the value; its earlier plot, if any, stays. With provenance, a missing value is a bug and raises.
"""
from __future__ import annotations

import sys
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
            record = read_metrics(path)
            try:
                drawn += experiment.plot(rep.stage_config(stage, profile), record["metrics"],
                                         claims, paths.stage_dir(profile, rep.name, stage))
            except KeyError as missing:
                if "provenance" in record["meta"]:
                    raise
                print(f"[acbench] plot of {rep.name}/{stage} at {profile} not drawn: its metrics lack {missing} "
                      f"(results written before provenance keys; re-run the stage)", file=sys.stderr)
    return drawn

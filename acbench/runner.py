"""Run replication stages: validate every config first, then each stage under its provenance, its results
written all at once when it finishes (a failure, Ctrl-C or kill leaves the committed results as they were),
with a progress line per stage (stage i of N, elapsed, estimated time left)."""
from __future__ import annotations

import sys
import time

from acbench import paths, provenance
from acbench.config import Replication
from acbench.failures import StageFailed
from acbench.results import ResultsError, deferred_writes, read_metrics
from acbench.stage_guard import guard_stage
from acbench.stage_outputs import METRICS


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def last_seconds(profile: str, replication: str, stage: str) -> float | None:
    """How long the stage took last time (``stage_seconds`` of its committed metrics), if recorded."""
    try:
        value = read_metrics(paths.stage_dir(profile, replication, stage) / METRICS)["metrics"].get("stage_seconds")
    except ResultsError:
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _estimate(profile: str, replication: str, stages: list[str]) -> str:
    known = [s for s in (last_seconds(profile, replication, st) for st in stages) if s is not None]
    if not known:
        return "no earlier run to estimate from"
    text = f"about {_duration(sum(known))} left by the last run"
    missing = len(stages) - len(known)
    return text + (f" (+{missing} stage(s) without a recorded time)" if missing else "")


def pipeline_position(replication: str, stages: list[str], profile: str) -> str | None:
    """Where this run sits in the root ``dvc.yaml`` (the DVC stage running exactly ``stages``), and how long
    the pipeline's later stages took last time; None when no DVC stage runs these stages."""
    import yaml

    path = paths.repo_root() / "dvc.yaml"
    try:
        entries = list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages", {}).values())
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    wanted = f"acbench run {replication} " + " ".join(f"--stage {s}" for s in stages) + " --profile"
    index = next((i for i, e in enumerate(entries) if isinstance(e, dict) and wanted in str(e.get("cmd", ""))), None)
    if index is None:
        return None
    later = 0.0
    for entry in entries[index + 1:]:
        words = str(entry.get("cmd", "")).split()
        if len(words) > 4 and words[2:4] == ["acbench", "run"]:
            names = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--stage"]
            later += sum(last_seconds(profile, words[4], n) or 0.0 for n in names)
    return (f"DVC stage {index + 1}/{len(entries)} of dvc.yaml; the replication stages after it took "
            f"{_duration(later)} last time (those with a recorded time)")


def run_stages(rep: Replication, stages: list[str], profile: str) -> None:
    from acbench.experiments import get_experiment

    configs = {stage: rep.stage_config(stage, profile) for stage in stages}  # all validated before any runs
    position = pipeline_position(rep.name, stages, profile)
    if position:
        print(f"[acbench] {position}", file=sys.stderr)
    began = time.perf_counter()
    for i, stage in enumerate(stages, 1):
        out_dir = paths.stage_dir(profile, rep.name, stage)
        print(f"[acbench] stage {i}/{len(stages)}: {rep.name}/{stage} at profile {profile} -> {out_dir} "
              f"({_duration(time.perf_counter() - began)} elapsed; {_estimate(profile, rep.name, stages[i - 1:])})",
              file=sys.stderr)
        start = time.perf_counter()
        try:
            with guard_stage(out_dir, f"{rep.name}/{stage}"):
                prov = provenance.stage_provenance(rep.name, stage, profile)
                with provenance.active(prov), deferred_writes(out_dir):
                    get_experiment(rep.name, rep.params.stages[stage]).run(configs[stage], out_dir)
        except Exception as exc:
            raise StageFailed(f"{rep.name}/{stage} (profile {profile})", exc) from exc
        print(f"[acbench] {rep.name}/{stage} done in {_duration(time.perf_counter() - start)} "
              f"(run key {prov.run_key[:12]})", file=sys.stderr)

"""The DVC pipeline, written from the replication folders (``acbench pipeline``) and checked against the
committed ``dvc.yaml`` (``acbench pipeline --check``, run by CI).

One DVC stage per entry of a replication's ``pipeline`` groups and per ungrouped stage, then ``report``:
- ``cmd``: ``python -m acbench run <replication> --stage ... --profile ${profile}``;
- ``deps``: every project file in the stages' import closure (``acbench.provenance``: experiment
  module, runner, methods, dataset loaders, replication-folder code), the declarations of the datasets
  they read, and the outputs of the upstream stages their configs name (a teacher's checkpoint folder
  and ``metrics.json``; another stage's ``metrics.json``);
- ``params``: ``profile`` and each stage's ``common.<stage>`` / ``profiles.${profile}.<stage>``;
- ``metrics`` / ``outs``: ``metrics.json``, ``table.md``, ``items/`` and the checkpoint folder, all
  ``persist: true`` (DVC would delete them before the command runs; the runner replaces the results
  only when a stage finishes, so a failed, interrupted or killed stage leaves them as they were);
- ``report``: every ``published.yaml`` and ``params.yaml``, every stage's results, the report and plot
  code; its outputs are ``REPORT.md`` and the plots the experiments declare (``PLOTS``).
The single root ``dvc.yaml`` keeps one ``${profile}`` (root ``params.yaml``) for every stage, so
``dvc repro``, ``dvc exp run -S profile=smoke``, ``dvc params diff``, ``dvc metrics diff`` and ``dvc plots``
work as usual.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from acbench import paths, provenance
from acbench.config import ConfigError, Replication, list_replications, load_replication, read_yaml
from acbench.stage_outputs import ITEMS_DIR, METRICS, TABLE_FILE, outputs_of

HEADER = """\
# Written by `acbench pipeline` from replications/*/params.yaml and the stages' code: do not edit by
# hand (CI runs `acbench pipeline --check`, which fails naming any stage that differs). The profile
# (smoke | cpu | paper) comes from params.yaml; every output lands under results/<profile>/ and
# checkpoints/<profile>/. Results are committed (cache: false); checkpoints go to the DVC cache.
# Outputs persist: a stage that fails leaves the committed results as they were.
# A stage's `python` is the first on PATH: activate the project's virtualenv first (see README).
"""
PROFILE = "${profile}"
COMMITTED = {"cache": False, "persist": True}


class PipelineError(ConfigError):
    """The replication folders do not make a valid pipeline (the message names the stage)."""


def _rel(path: Path) -> str:
    return provenance.display(path.resolve())


def _results(rep: str, stage: str, name: str = "") -> str:
    return f"results/{PROFILE}/{rep}/{stage}" + (f"/{name}" if name else "")


def _upstream_deps(rep: str, stage: str) -> list[str]:
    from acbench.experiments import get_experiment

    upstream = load_replication(rep)
    outputs = outputs_of(get_experiment(rep, upstream.params.stages[stage]))
    deps = [_results(rep, stage, METRICS)]
    if outputs.checkpoints == "model":
        deps.insert(0, f"checkpoints/{PROFILE}/{rep}/{stage}")
    return deps


def _params(rep: Replication, members: list[str]) -> list[Any]:
    raw = read_yaml(rep.params_path)
    keys = []
    for stage in members:
        if stage in (raw.get("common") or {}):
            keys.append(f"common.{stage}")
        keys.append(f"profiles.{PROFILE}.{stage}")
    return ["profile", {_rel(rep.params_path): keys}]


def replication_stage(rep: Replication, name: str, members: list[str]) -> dict[str, Any]:
    """The DVC stage ``<replication>-<name>`` running ``members``."""
    from acbench.experiments import get_experiment

    files: set[str] = set()
    upstream: list[str] = []
    for stage in members:
        inputs = provenance.stage_inputs(rep.name, stage)
        files |= {_rel(p) for p in inputs.code.files}
        for ref in dict.fromkeys(r for refs in inputs.upstream.values() for r in refs):
            if ref[0] == rep.name and ref[1] in members:
                raise PipelineError(f"{rep.params_path}: pipeline.{name}: {stage!r} reads {ref[1]!r}, which the "
                                    f"same group runs; put them in different groups")
            upstream += _upstream_deps(*ref)
    stage_flags = " ".join(f"--stage {s}" for s in members)
    entry: dict[str, Any] = {
        "cmd": f"python -m acbench run {rep.name} {stage_flags} --profile {PROFILE}",
        "deps": sorted(files) + list(dict.fromkeys(upstream)),
        "params": _params(rep, members),
        "metrics": [{_results(rep.name, s, METRICS): dict(COMMITTED)} for s in members],
    }
    outs: list[Any] = []
    for stage in members:
        outputs = outputs_of(get_experiment(rep.name, rep.params.stages[stage]))
        if outputs.table:
            outs.append({_results(rep.name, stage, TABLE_FILE): dict(COMMITTED)})
        if outputs.items:
            outs.append({_results(rep.name, stage, ITEMS_DIR): dict(COMMITTED)})
        if outputs.checkpoints:
            outs.append({f"checkpoints/{PROFILE}/{rep.name}/{stage}": {"persist": True}})
    if outs:
        entry["outs"] = outs
    return entry


def report_stage(replications: list[Replication]) -> dict[str, Any]:
    from acbench.experiments import get_experiment

    report_code = [provenance.source_root() / "acbench" / "report" / name for name in ("markdown.py", "plots.py")]
    code: set[Path] = set()
    results: list[str] = []
    plots: list[Any] = []
    for rep in replications:
        for stage, experiment_name in rep.params.stages.items():
            experiment = get_experiment(rep.name, experiment_name)
            outputs = outputs_of(experiment)
            results.append(_results(rep.name, stage, METRICS))
            if outputs.table:
                results.append(_results(rep.name, stage, TABLE_FILE))
            if outputs.items:
                results.append(_results(rep.name, stage, ITEMS_DIR))
            if outputs.plots:
                code.add(Path(experiment.__file__))
                plots += [{_results(rep.name, stage, png): dict(COMMITTED)} for png in outputs.plots]
    files = {_rel(p) for p in provenance.import_closure(report_code + sorted(code))}
    files |= {_rel(rep.folder / n) for rep in replications for n in ("params.yaml", "published.yaml")}
    entry: dict[str, Any] = {"cmd": f"python -m acbench report --profile {PROFILE}",
                             "deps": sorted(files) + results, "params": ["profile"],
                             "outs": [{"results/REPORT.md": dict(COMMITTED)}]}
    if plots:
        entry["plots"] = plots
    return entry


def build() -> dict[str, Any]:
    """The pipeline as a mapping: ``{"stages": {name: stage}}``, in the replications' order."""
    replications = [load_replication(name) for name in list_replications()]
    stages: dict[str, Any] = {}
    for rep in replications:
        for name, members in rep.params.pipeline_stages().items():
            stages[f"{rep.name}-{name}"] = replication_stage(rep, name, members)
    stages["report"] = report_stage(replications)
    return {"stages": stages}


def render(pipeline: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(pipeline, sort_keys=False, default_flow_style=False, width=1000)


def pipeline_path() -> Path:
    return paths.repo_root() / "dvc.yaml"


def write() -> Path:
    from acbench.results import write_text_atomic

    path = pipeline_path()
    write_text_atomic(path, render(build()))
    return path


def differences(committed: dict[str, Any] | None, expected: dict[str, Any]) -> list[str]:
    """One line per difference, naming the stage and what differs."""
    have = (committed or {}).get("stages") or {}
    want = expected["stages"]
    lines = [f"stage {name!r} is missing" for name in want if name not in have]
    lines += [f"stage {name!r} is not written by the replication folders" for name in have if name not in want]
    for name in want:
        if name not in have:
            continue
        for field in sorted(set(want[name]) | set(have[name])):
            mine, theirs = want[name].get(field), have[name].get(field)
            if mine == theirs:
                continue
            if isinstance(mine, list) and isinstance(theirs, list):
                def keyed(items):
                    return [yaml.safe_dump(i, sort_keys=True).strip() for i in items]
                missing = [i for i in keyed(mine) if i not in keyed(theirs)]
                extra = [i for i in keyed(theirs) if i not in keyed(mine)]
                detail = "; ".join(x for x in (f"missing {_some(missing)}" if missing else "",
                                                f"not expected {_some(extra)}" if extra else "",
                                                "order differs" if not missing and not extra else "") if x)
            else:
                detail = f"expected {mine!r}, found {theirs!r}"
            lines.append(f"stage {name!r}: {field}: {detail}")
    return lines


def _some(items: list[str], shown: int = 6) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(i.replace("\n", " ") for i in items[:shown]) + more


def check() -> list[str]:
    """Differences between the committed ``dvc.yaml`` and the pipeline the folders make (empty: none)."""
    path = pipeline_path()
    if not path.is_file():
        return [f"{path}: missing"]
    expected = build()
    text = path.read_text(encoding="utf-8")
    if text == render(expected):
        return []
    lines = differences(yaml.safe_load(text), expected)
    return lines or ["the file's text differs (comments or layout) from what `acbench pipeline` writes"]

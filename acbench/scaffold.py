"""``acbench new NAME [--from EXISTING]``: write a replication folder that runs at ``smoke`` at once.

Without ``--from`` the folder is a distillation study on CIFAR-10 built from the shared engine
experiments (``cifar.teacher``, ``cifar.kd``): a ResNet-56 teacher, a small ViT student trained
with no KD, logit KD and the method under study (``kd`` until you name yours), and one claim, "the
method beats logit KD", judged on the paired interval of their per-image records (the comparator is
named before the run, not the best baseline picked after it). With
``--from`` it copies another replication's ``params.yaml``, ``published.yaml`` and ``stages/`` code.
Either way the README is a fresh template, and what to fill in is printed.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from acbench import paths
from acbench.config import ConfigError, list_replications

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

README = """\
# {name}

TODO: the paper (title, arXiv id) and, in a few lines, what it claims.

## Claims
`published.yaml` holds each published number as data; `acbench list {name}` shows them.
TODO: one entry per number: where the paper states it, the direction, the tolerance and why.

## What we pin
TODO: models, data, schedules per profile (`params.yaml`), and why.

## Deviations from the paper
TODO: every deviation and why.

## Stages
`params.yaml` `stages:` names, per stage, either an engine experiment (`cifar.teacher`,
`cifar.kd`, `mwp.teacher`: see `acbench/experiments/__init__.py`) or a file of this folder,
`stages/<module>.py`, for code only this replication uses (a pydantic `Config` and
`run(config, out_dir)`; files of this folder import each other relatively).
A new method is one module in `methods/` that registers itself by name
(`methods/registry.py`), plus its entry in `params.yaml`.
"""

PARAMS = """\
# {name}: a distillation study on CIFAR-10 (written by `acbench new`; fill in the TODOs).
# Profiles: smoke (CI, a minute), cpu (default of `dvc repro`), paper (the paper's setup; GPU).
# `common` is merged under every profile; a profile's own value wins.
paper: "TODO: arXiv id"

stages:                         # stage name -> a file of this folder, or an engine experiment (acbench/experiments/__init__.py)
  teacher: cifar.teacher
  students: cifar.kd

shared:
  methods: &methods             # each entry: name, kind (a registered image_kd method, methods/registry.py), its parameters
    - {{name: no_kd, kind: none}}
    - {{name: kd, kind: kd, ce_weight: 1.0, kd_weight: 1.0, temperature: 4.0}}
    - {{name: method, kind: kd, ce_weight: 1.0, kd_weight: 1.0, temperature: 4.0}}   # TODO: kind: your method, its parameters
  smoke_data: &smoke_data {{train_limit: 40, test_limit: 20}}
  smoke_train: &smoke_train {{epochs: 1, batch_size: 8, lr: 1.0e-3, checkpoint_every: 2}}

common:
  teacher:
    depth: 56
  students:
    teacher_stage: teacher
    student: {{kind: vit, depth: 6, dim: 96, heads: 3, patch: 4}}
    methods: *methods
    baselines: [no_kd, kd]
    target: method
    seeds: [0, 1, 2]

profiles:
  smoke:                        # 40 training / 20 test images, a tiny student: plumbing only
    teacher: {{data: *smoke_data, train: *smoke_train, threads: 2}}
    students: {{data: *smoke_data, student: {{depth: 3, dim: 16, heads: 2}}, train: *smoke_train, max_seeds: 1, threads: 2}}
  cpu:                          # TODO: a small but converged setup (each stage under 60 min on 2 cores)
    teacher: {{train: {{epochs: 0.5, batch_size: 64, lr: 1.0e-4, weight_decay: 1.0e-4, warmup_ratio: 0.05, checkpoint_every: 100}}, threads: 2}}
    students: {{data: {{train_limit: 5000, test_limit: 5000}}, train: {{epochs: 2, batch_size: 64, lr: 1.0e-3, weight_decay: 0.05, warmup_ratio: 0.1, checkpoint_every: 50}}, threads: 2}}
  paper:                        # TODO: the paper's setup
    teacher: {{train: {{epochs: 240, batch_size: 128, lr: 1.0e-3, weight_decay: 5.0e-4, checkpoint_every: 1000}}}}
    students: {{data: {{}}, student: {{depth: 12, dim: 384, heads: 6}}, train: {{epochs: 300, batch_size: 128, lr: 5.0e-4, weight_decay: 0.05, checkpoint_every: 1000}}}}
"""

PUBLISHED = """\
# Published claims of {name} as data (written by `acbench new`; fill in the TODOs).
# direction: match = the value itself must agree; higher_is_better / lower_is_better = one-sided.
paper: "TODO: arXiv id"
title: "TODO: title"
claims:
  - id: beats_kd
    claim: "TODO: the method beats logit KD, the comparator named before any run (say which paper statement this is)."
    metric: "top-1 difference method − logit KD, paired on test images and seeds"
    value: 0
    unit: "points"
    where: "TODO: section / table of the paper"
    direction: higher_is_better
    tolerance: 0
    tolerance_reason: "Directional ('beats'): the threshold is 0 and there is no slack."
    profiles: [cpu, paper]
    compare:
      statistic: difference
      a: {{stage: students, run: method}}
      b: {{stage: students, run: kd}}
    design:
      disagreement: 0.2
      basis: "TODO: assumed share of test images on which the two students disagree (a pilot run's, once there is one)"
      at:
        smoke: {{items: 20, seeds: 1}}
        cpu: {{items: 5000, seeds: 3}}
"""

TODO_BLANK = """\
wrote {folder}
fill in:
  - README.md: the paper, its claims, what is pinned, every deviation (the TODO lines)
  - published.yaml: paper, title, and each claim (text, where, value, tolerance and why)
  - params.yaml: your method (kind: a module in methods/ that registers itself, see methods/registry.py),
    the baselines, and the cpu / paper profiles
then:
  acbench run {name} --profile smoke            runs at once (needs the data root: ACBENCH_DATA_ROOT)
  acbench reference {name} --profile smoke      freezes the smoke reference that CI compares against
  acbench pipeline                                   rewrites dvc.yaml with this folder's stages (commit it)
  acbench list {name}                           shows the claims"""

TODO_COPY = """\
wrote {folder} (params.yaml, published.yaml and stages/ copied from {source})
fill in:
  - README.md: the paper, its claims, what is pinned, every deviation (the TODO lines)
  - published.yaml: the claims are {source}'s: replace them with this paper's
  - params.yaml: paper, the stages and their settings per profile
  - stages/: copied code; code that both replications need belongs in the engine (acbench/experiments/),
    named in both params.yaml files, not in two copies
then:
  acbench run {name} --profile smoke            runs at once (needs the data root: ACBENCH_DATA_ROOT)
  acbench reference {name} --profile smoke      freezes the smoke reference that CI compares against
  acbench pipeline                                   rewrites dvc.yaml with this folder's stages (commit it)
  acbench list {name}                           shows the claims"""


def new_replication(name: str, source: str | None = None, root: Path | None = None) -> tuple[Path, str]:
    """Write ``replications/<name>/``; return the folder and what to fill in (a text to print)."""
    base = root or paths.replications_dir()
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"replication name {name!r}: use lower-case letters, digits and '_', starting with a "
                          f"letter (it names results/<profile>/{name}/ and the Python package of its code)")
    folder = base / name
    if folder.exists():
        raise ConfigError(f"{folder} exists already: choose another name or delete it")
    if source is not None and source not in list_replications(base):
        known = ", ".join(list_replications(base)) or "none"
        raise ConfigError(f"--from {source}: no replication of that name (known: {known})")
    folder.mkdir(parents=True)
    try:
        if source is None:
            (folder / "params.yaml").write_text(PARAMS.format(name=name), encoding="utf-8")
            (folder / "published.yaml").write_text(PUBLISHED.format(name=name), encoding="utf-8")
            todo = TODO_BLANK.format(folder=folder, name=name)
        else:
            for file in ("params.yaml", "published.yaml"):
                shutil.copy2(base / source / file, folder / file)
            if (base / source / "stages").is_dir():
                shutil.copytree(base / source / "stages", folder / "stages",
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            todo = TODO_COPY.format(folder=folder, name=name, source=source)
        (folder / "README.md").write_text(README.format(name=name), encoding="utf-8")
        (folder / "__init__.py").write_text(f'"""Replication {name}: see README.md beside this file."""\n',
                                            encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-written is left behind
        raise
    return folder, todo

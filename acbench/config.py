"""Loading and validating replication folders: ``params.yaml`` and ``published.yaml``.

A replication folder ``replications/<name>/`` holds:

- ``params.yaml``: which stages the replication has (stage name -> the experiment that runs it: a
  file of the folder such as ``stages/summary.py``, or a shared engine experiment such as
  ``cifar.kd``; see :mod:`acbench.experiments`) and one
  config per stage for each profile (``smoke``, ``cpu``, ``paper``); ``common`` is deep-merged
  under every profile.
- ``published.yaml``: each published number as data (see :class:`Claim`).

Every error names the file, the field and what was expected.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from acbench import paths
from acbench.errors import AcbenchError
from acbench.paths import PROFILES


class ConfigError(AcbenchError, ValueError):
    """A config file is missing, unreadable or does not match its schema."""


def _numeric(annotation: Any) -> bool:
    """Whether a field annotation is a number (int, float, optionally None), not bool or a union with str."""
    args = get_args(annotation)
    if args and get_origin(annotation) in (Union, UnionType):
        return any(_numeric(a) for a in args if a is not type(None)) and str not in args and bool not in args
    return annotation in (int, float)


def _numeric_items(annotation: Any) -> bool:
    return get_origin(annotation) in (list, tuple, set) and any(_numeric(a) for a in get_args(annotation))


class Strict(BaseModel):
    """Base for config models: unknown keys are errors (a typo must not be silently ignored), and a
    number field takes only numbers: ``true`` or ``"2"`` for an ``int``/``float`` is an error, not 1 or 2."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        if _numeric(annotation):
            items = [value]
        elif _numeric_items(annotation) and isinstance(value, (list, tuple)):
            items = list(value)
        else:
            return value
        for item in items:
            if isinstance(item, (bool, str)):
                raise ValueError(f"expected a number, not {type(item).__name__}")
        return value


class ResultRef(Strict):
    """Where the reproduced value of a claim is read: ``results/<profile>/<replication>/<stage>/metrics.json[key]``."""

    stage: str
    key: str


Profile = Literal["smoke", "cpu", "paper"]


class Condition(Strict):
    """One arm of a comparison: the runs named ``run`` of ``stage`` (every seed of it), read from the
    stage's per-item records (``items/<run>.csv`` or ``items/<run>@s<seed>.csv``, see :mod:`acbench.items`)."""

    stage: str
    run: str = Field(pattern=r"^[A-Za-z0-9_.-]+(@[A-Za-z0-9_.-]+)?$")


STATISTICS = ("accuracy", "difference", "smallest_difference", "recovery", "speedup", "prunable_share")


class Compare(Strict):
    """How a claim's estimate is computed from per-item (or per-round) records, named before any run.

    - ``accuracy``: accuracy of ``a`` (%);
    - ``difference``: ``a`` − ``b`` in points, paired on the same items and seeds;
    - ``smallest_difference``: the smallest ``a`` − ``b`` over ``pairs`` (a claim that must hold on every pair);
    - ``recovery``: the share of ``reference`` − ``b`` that ``a`` wins back, 100·(a − b)/(reference − b);
    - ``speedup``: 100·(median time of ``a`` / median time of ``b`` − 1), paired over timing rounds;
    - ``prunable_share``: the largest share of heads (%) on the curve ``a`` (runs ``<run>@<pct>``) whose
      accuracy stays within ``drop_points`` of the unpruned point.
    """

    statistic: Literal["accuracy", "difference", "smallest_difference", "recovery", "speedup", "prunable_share"]
    a: Condition | None = None
    b: Condition | None = None
    reference: Condition | None = None
    pairs: list[tuple[Condition, Condition]] | None = None
    drop_points: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _fields_of_the_statistic(self) -> "Compare":
        need = {"accuracy": ["a"], "difference": ["a", "b"], "smallest_difference": ["pairs"],
                "recovery": ["a", "b", "reference"], "speedup": ["a", "b"],
                "prunable_share": ["a", "drop_points"]}[self.statistic]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"statistic {self.statistic!r} needs {need}; missing {missing}")
        extra = [f for f in ("a", "b", "reference", "pairs", "drop_points") if f not in need and getattr(self, f) is not None]
        if extra:
            raise ValueError(f"statistic {self.statistic!r} does not use {extra}")
        if self.pairs is not None and len(self.pairs) < 2:
            raise ValueError("smallest_difference needs at least two pairs (use difference for one)")
        return self

    def conditions(self) -> list[Condition]:
        out = [c for c in (self.a, self.b, self.reference) if c is not None]
        for a, b in self.pairs or []:
            out += [a, b]
        return out


class DesignAt(Strict):
    items: int = Field(ge=1, description="test items per fold")
    seeds: int = Field(1, ge=1)
    folds: int = Field(1, ge=1)


class Design(Strict):
    """What the minimum detectable effect (MDE) of a paired accuracy difference is computed from."""

    disagreement: float = Field(gt=0, le=1, description="assumed share of items on which the two arms differ")
    seed_correlation: float = Field(1.0, ge=0, le=1, description="correlation of a per-item difference "
                                    "between seeds (1: extra seeds do not shrink item noise)")
    basis: str = Field(min_length=1, description="where the disagreement rate comes from (pilot run, assumption)")
    at: dict[Profile, DesignAt] = Field(min_length=1, description="items, seeds and folds at each profile")


class Claim(Strict):
    """One published number. Its acceptance bounds (the *threshold*) are ``value`` − ``tolerance``
    (``higher_is_better``: the claim holds when the quantity is at least that), ``value`` +
    ``tolerance`` (``lower_is_better``) or the band ``value`` ± ``tolerance`` (``match``, an
    equivalence test). A claim with ``compare`` is judged on a paired bootstrap interval from
    per-item records; one with only ``result`` is an exact (arithmetic) quantity: counts, FLOPs."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    claim: str = Field(min_length=1, description="the claim in words")
    metric: str = Field(min_length=1)
    value: float
    unit: str
    where: str = Field(min_length=1, description="where in the paper the number is stated")
    direction: Literal["match", "higher_is_better", "lower_is_better"]
    tolerance: float = Field(ge=0)
    tolerance_reason: str = Field(min_length=1)
    profiles: list[Profile] = Field(description="profiles whose runs can check this claim")
    result: ResultRef | None = Field(
        default=None, description="metric holding the point estimate (the exact value of an arithmetic "
        "claim; for a compared claim, its value where no per-item records exist); absent while no stage measures it")
    compare: Compare | None = Field(default=None, description="the paired comparison the claim is judged on")
    design: Design | None = Field(default=None, description="design of the MDE (paired accuracy differences)")
    check_tolerance: float | None = Field(
        default=None, ge=0, description="how far the estimate may move from the committed verdict record "
        "before `acbench check` fails (default: the committed interval's half-width, or 1e-6 relative for exact claims)")
    note: str = ""

    @field_validator("profiles")
    @classmethod
    def _unique_profiles(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"profiles listed twice: {v}")
        return v

    @model_validator(mode="after")
    def _design_needs_a_difference(self) -> "Claim":
        if self.design is not None and (self.compare is None or self.compare.statistic not in
                                        ("difference", "smallest_difference", "accuracy")):
            raise ValueError("design (MDE of a paired accuracy difference) needs compare.statistic "
                             "difference, smallest_difference or accuracy")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """(lower, upper) acceptance bounds; one of them infinite for a one-sided claim."""
        lo, hi = self.value - self.tolerance, self.value + self.tolerance
        return {"match": (lo, hi), "higher_is_better": (lo, math.inf),
                "lower_is_better": (-math.inf, hi)}[self.direction]

    @property
    def stages(self) -> list[str]:
        out = [c.stage for c in self.compare.conditions()] if self.compare else []
        if self.result is not None:
            out.append(self.result.stage)
        return list(dict.fromkeys(out))


class Floor(Strict):
    """A health floor: a property of the setup that must hold before the named claims get a verdict.

    - ``at_least``: ``result`` ≥ ``bound``;
    - ``fraction_of_paper``: ``result`` ≥ ``fraction`` × ``paper_value`` (e.g. the teacher's accuracy);
    - ``within``: |``result`` − ``versus``| ≤ ``bound`` (a no-harm control, e.g. a ratio-0 prune vs its teacher);
    - ``converged``: the loss curve ``meta.<result.key>`` of ``result.stage`` made at most ``bound`` % of
      its whole decrease in its last ``window`` share of steps (see ``acbench.report.floors``); where
      ``meta.<result.key>`` maps runs (``<run>-s<seed>``) to curves, every curve of the ``runs`` named
      (all when omitted) must pass, and the worst is reported.
    A failed floor makes the claims' verdict *not testable*, naming the floor and its value.
    """

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    what: str = Field(min_length=1, description="the floor in words, with why this bound")
    kind: Literal["at_least", "fraction_of_paper", "within", "converged"]
    result: ResultRef
    bound: float | None = None
    fraction: float | None = Field(None, gt=0, le=1)
    paper_value: float | None = None
    versus: ResultRef | None = None
    window: float = Field(0.2, gt=0, le=1 / 3)
    runs: list[str] | None = Field(None, min_length=1, description="converged: the runs whose curves count")
    claims: list[str] = Field(min_length=1, description="ids of the claims this floor gates")

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> "Floor":
        need = {"at_least": ["bound"], "fraction_of_paper": ["fraction", "paper_value"],
                "within": ["bound", "versus"], "converged": ["bound"]}[self.kind]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs {need}; missing {missing}")
        return self


class Published(Strict):
    paper: str
    title: str
    claims: list[Claim] = Field(min_length=1)
    floors: list[Floor] = Field(default_factory=list, description="health floors (see Floor)")

    @model_validator(mode="after")
    def _unique_ids(self) -> "Published":
        ids = [c.id for c in self.claims]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"claim ids must be unique, repeated: {dupes}")
        floor_ids = [f.id for f in self.floors]
        dupes = sorted({i for i in floor_ids if floor_ids.count(i) > 1})
        if dupes:
            raise ValueError(f"floor ids must be unique, repeated: {dupes}")
        for floor in self.floors:
            unknown = sorted(set(floor.claims) - set(ids))
            if unknown:
                raise ValueError(f"floor {floor.id}: claims {unknown} are not claims of this file")
        return self


class ReplicationParams(Strict):
    paper: str
    stages: dict[str, str] = Field(min_length=1, description="stage name -> experiment: a file of the "
                                   "folder (stages/<module>.py) or an engine experiment name")
    shared: dict[str, Any] = Field(default_factory=dict, description="blocks defined once as YAML anchors "
                                   "(&name) and reused with aliases (*name); not read directly")
    common: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profiles: dict[str, dict[str, dict[str, Any]]]
    pipeline: dict[str, list[str]] = Field(
        default_factory=dict, description="DVC stage name -> stages run in order in one process (each process "
        "pays the torch + transformers import); every other stage is a DVC stage of its own")

    @model_validator(mode="after")
    def _every_profile_configures_every_stage(self) -> "ReplicationParams":
        missing = [p for p in PROFILES if p not in self.profiles]
        if missing:
            raise ValueError(f"profiles {missing} missing (every replication has {list(PROFILES)})")
        unknown = [p for p in self.profiles if p not in PROFILES]
        if unknown:
            raise ValueError(f"unknown profiles {unknown} (expected {list(PROFILES)})")
        for profile, stages in self.profiles.items():
            extra = sorted(set(stages) - set(self.stages))
            if extra:
                raise ValueError(f"profiles.{profile}: stages {extra} are not declared under 'stages'")
        grouped: dict[str, str] = {}
        for group, members in self.pipeline.items():
            if not members:
                raise ValueError(f"pipeline.{group}: empty; list the stages it runs")
            if group in self.stages and members != [group]:
                raise ValueError(f"pipeline.{group}: the name of stage {group!r}; pick another name for the group")
            for stage in members:
                if stage not in self.stages:
                    raise ValueError(f"pipeline.{group}: {stage!r} is not declared under 'stages'")
                if stage in grouped:
                    raise ValueError(f"pipeline.{group}: {stage!r} is already run by pipeline.{grouped[stage]}")
                grouped[stage] = group
        return self

    def pipeline_stages(self) -> dict[str, list[str]]:
        """Every DVC stage of the replication -> the stages it runs, in the order of ``stages`` (a group sits
        where its first member is declared)."""
        out: dict[str, list[str]] = {}
        group_of = {stage: group for group, members in self.pipeline.items() for stage in members}
        for stage in self.stages:
            group = group_of.get(stage)
            if group is None:
                out[stage] = [stage]
            elif group not in out:
                out[group] = list(self.pipeline[group])
        return out


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: {err.error_count()} invalid field(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        got_text = "" if isinstance(got, dict) else f", got {got!r}"
        lines.append(f"  {loc}: {e['msg']}{got_text}")
    return "\n".join(lines)


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first: int):
        super().__init__(f"line {line}: key {key!r} is given twice in one mapping (first at line {first}); keep one")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (PyYAML keeps the last silently).
    Keys merged in with ``<<: *anchor`` may be overridden, as YAML intends."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKey(key, line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep)


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` that rejects duplicate keys (:class:`DuplicateKey`)."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def read_yaml(path: Path) -> dict:
    """Read a YAML mapping; a missing file, bad YAML, a key given twice or a non-mapping is a
    ConfigError naming the file (and the line)."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def validate(model: type[BaseModel], data: Any, path: Path, prefix: str = "") -> Any:
    """Validate ``data`` against ``model``; errors name ``path`` and the field (under ``prefix``)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        message = _format_validation_error(path, err)
        if prefix:
            message = message.replace("\n  ", f"\n  {prefix}.")
        raise ConfigError(message) from None


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Replication:
    name: str
    folder: Path
    params: ReplicationParams
    published: Published

    @property
    def params_path(self) -> Path:
        return self.folder / "params.yaml"

    def stage_config(self, stage: str, profile: str) -> BaseModel:
        """The validated config of ``stage`` at ``profile`` (common settings merged in)."""
        from acbench.experiments import get_experiment

        if stage not in self.params.stages:
            raise ConfigError(
                f"{self.params_path}: no stage {stage!r} (stages: {sorted(self.params.stages)})")
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r} (expected one of {list(PROFILES)})")
        raw = self.params.profiles[profile].get(stage)
        if raw is None:
            raise ConfigError(f"{self.params_path}: profiles.{profile}.{stage}: missing")
        merged = deep_merge(self.params.common.get(stage, {}), raw)
        experiment = get_experiment(self.name, self.params.stages[stage])
        return validate(experiment.Config, merged, self.params_path, f"profiles.{profile}.{stage}")


_loaded: dict[tuple, Replication] = {}


def load_replication(name: str, root: Path | None = None, *, validate_stages: bool = True) -> Replication:
    """Load and validate a replication folder. ``validate_stages`` (default) also validates every
    stage's config at every profile, which imports the experiments (and torch); commands that need
    no model pass False and stay fast. A folder is kept in memory while its two files are unchanged."""
    folder = (root or paths.replications_dir()) / name
    try:
        key = (folder.resolve(), validate_stages) + tuple(
            (folder / f).read_bytes() for f in ("params.yaml", "published.yaml"))
    except OSError:
        key = None
    if key in _loaded:
        return _loaded[key]
    replication = _load_replication(name, folder, root, validate_stages)
    if key is not None:
        _loaded[key] = replication
    return replication


def _load_replication(name: str, folder: Path, root: Path | None, validate_stages: bool) -> Replication:
    if not folder.is_dir():
        known = ", ".join(list_replications(root)) or "none"
        raise ConfigError(f"no replication folder {folder} (known: {known})")
    params_path, published_path = folder / "params.yaml", folder / "published.yaml"
    params = validate(ReplicationParams, read_yaml(params_path), params_path)
    published = validate(Published, read_yaml(published_path), published_path)
    from acbench.experiments import ExperimentError, check_experiment

    for stage, experiment in params.stages.items():
        try:
            check_experiment(name, experiment)
        except ExperimentError as exc:
            raise ConfigError(f"{params_path}: stages.{stage}: {exc}") from None
    for claim in published.claims:
        refs = [("result", claim.result)] + [("compare", c) for c in (claim.compare.conditions() if claim.compare else [])]
        for field_name, ref in refs:
            if ref is not None and ref.stage not in params.stages:
                raise ConfigError(f"{published_path}: claims[{claim.id}].{field_name}.stage: {ref.stage!r} "
                                  f"is not a stage of {params_path.name} (stages: {sorted(params.stages)})")
    for floor in published.floors:
        for ref in (floor.result, floor.versus):
            if ref is not None and ref.stage not in params.stages:
                raise ConfigError(f"{published_path}: floors[{floor.id}]: stage {ref.stage!r} is not a stage "
                                  f"of {params_path.name} (stages: {sorted(params.stages)})")
    replication = Replication(name, folder, params, published)
    if not validate_stages:
        return replication
    for stage in params.stages:  # validate every stage at every profile now, not mid-run
        for profile in PROFILES:
            replication.stage_config(stage, profile)
    return replication


def list_replications(root: Path | None = None) -> list[str]:
    folder = root or paths.replications_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "published.yaml").is_file())


def default_profile() -> str:
    """The ``profile`` of the root ``params.yaml`` (what ``dvc repro`` runs), ``cpu`` if unset."""
    path = paths.repo_root() / "params.yaml"
    if not path.is_file():
        return "cpu"
    return validate(RootParams, read_yaml(path), path).profile


class RootParams(Strict):
    """The repository's root ``params.yaml`` (DVC's parameters): a misspelled key is an error, not ``cpu``."""

    profile: Literal["smoke", "cpu", "paper"] = "cpu"

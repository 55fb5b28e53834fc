"""Provenance of a stage run: what produced a number, and the key that says when it must be recomputed.

A stage's run key is the SHA-256 of
- the resolved stage config (``common`` merged under the profile's block, validated);
- the content digest of every upstream artefact it reads: the checkpoint folder of a stage whose
  experiment declares ``CHECKPOINTS = "model"`` (a teacher), else that stage's ``metrics.json``;
- every dataset it reads, by its declaration's file checksums and splits (``datasets/<name>.yaml``);
- the source of every project module in its import closure, computed statically (``ast``) from its
  experiment module and the stage runner through ``acbench``, ``methods``, dataset loaders and
  replication-folder code, wherever they live (file contents only, so moving a file is no change),
  plus the ``methods/`` modules that register a method the stage's configs or code name (methods are
  looked up by name at run time: :func:`methods_named`);
- the versions of the libraries that change numerics (``LIBRARIES``).

Finished-run records, resumable training checkpoints and caches are keyed by it (``run_key``), and
every ``metrics.json`` written inside a stage carries it under ``meta.provenance``.
"""
from __future__ import annotations

import ast
import contextlib
import contextvars
import importlib.metadata
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Iterator

import yaml
from pydantic import BaseModel

from acbench import paths
from acbench.digest import bytes_sha256, file_sha256, tree_sha256
from acbench.errors import StageInputMissing

LIBRARIES = ("torch", "transformers", "timm")
RUNNER_MODULE = "acbench/runner.py"
NOT_PROJECT = {"datasets"}  # `import datasets` is Hugging Face's library; our loaders load by file path


def text_sha256(text: str) -> str:
    return bytes_sha256(text.encode("utf-8"))


def source_root() -> Path:
    """The folder holding the ``acbench`` and ``methods`` packages."""
    return Path(__file__).resolve().parent.parent


def _roots() -> list[Path]:
    return list(dict.fromkeys([source_root(), paths.repo_root().resolve()]))


def display(path: Path) -> str:
    """``path`` relative to the repository root (or the source root), POSIX style."""
    for root in (paths.repo_root().resolve(), source_root()):
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.as_posix()


# ---------------------------------------------------------------- import closure
def _module_files(parts: list[str], base: Path) -> list[Path]:
    """Files executed by importing the dotted ``parts`` under ``base``: each package's ``__init__.py``
    and the module itself. Empty when ``parts[0]`` is not a folder or module under ``base``."""
    out: list[Path] = []
    folder = base
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and (folder / f"{part}.py").is_file():
            out.append(folder / f"{part}.py")
            return out
        folder = folder / part
        if not folder.is_dir():
            return out if i else []
        if (folder / "__init__.py").is_file():
            out.append(folder / "__init__.py")
    return out


@dataclass(frozen=True)
class _Parsed:
    imports: tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...]
    strings: frozenset[str]


_parsed: dict[tuple[Path, int, int], _Parsed] = {}


def _parse(path: Path) -> _Parsed:
    """Every import statement (lazy ones inside functions too) and short string constant of a file."""
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _parsed:
        imports, strings = [], set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                imports += [(0, tuple(alias.name.split(".")), ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imports.append((node.level, tuple(node.module.split(".")) if node.module else (),
                                tuple(a.name for a in node.names)))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 100:
                strings.add(node.value)
        _parsed[key] = _Parsed(tuple(imports), frozenset(strings))
    return _parsed[key]


def _resolve(path: Path, level: int, parts: list[str], names: list[str], roots: list[Path]) -> list[Path]:
    if level:
        base = path.parent
        for _ in range(level - 1):
            base = base.parent
        bases = [base]
    else:
        if not parts or parts[0] in NOT_PROJECT:
            return []
        bases = roots
    found: list[Path] = []
    for base in bases:
        if parts:
            found += _module_files(parts, base)
        for name in names:  # `from pkg import module` imports pkg/module.py
            candidate = _module_files(parts + [name], base) if name != "*" else []
            found += [p for p in candidate if p.name != "__init__.py" or p.parent.name == name]
        if found:
            break
    return found


_closures: dict[tuple, tuple[list[Path], dict[Path, int]]] = {}


def import_closure(starts: Iterable[Path]) -> list[Path]:
    """Every project source file that importing ``starts`` can execute, sorted (``starts`` included)."""
    roots = _roots()
    starts = tuple(sorted(Path(p).resolve() for p in starts))
    key = (starts, tuple(roots))
    cached = _closures.get(key)
    if cached is not None and all(p.is_file() and p.stat().st_mtime_ns == m for p, m in cached[1].items()):
        return list(cached[0])
    queue = list(starts)
    seen: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for level, parts, names in _parse(path).imports:
            queue += [p for p in _resolve(path, level, list(parts), list(names), roots) if p not in seen]
    closure = sorted(seen)
    _closures[key] = (closure, {p: p.stat().st_mtime_ns for p in closure})
    return list(closure)


def _string_constants(files: Iterable[Path]) -> set[str]:
    return set().union(*(_parse(p).strings for p in files))


def _config_strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_config_strings(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_config_strings(v) for v in value)) if value else set()
    return set()


# ---------------------------------------------------------------- datasets
def _declarations() -> dict[str, Path]:
    folder = paths.repo_root() / "datasets"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def datasets_named(strings: set[str]) -> list[str]:
    """Declared datasets among ``strings`` (a name, or its declaration's file name)."""
    return sorted(name for name in _declarations() if name in strings or f"{name}.yaml" in strings)


def dataset_digest(name: str) -> str:
    """Digest of what a declaration fixes about the data: every file's declared checksums, the splits and folds."""
    data = yaml.safe_load(_declarations()[name].read_text(encoding="utf-8")) or {}
    files = [{k: f.get(k) for k in ("path", "sha256", "md5")} for f in data.get("files", [])]
    return text_sha256(json.dumps({"files": files, "splits": data.get("splits"), "folds": data.get("folds")},
                                  sort_keys=True))


# ---------------------------------------------------------------- methods named
_registrations: dict[tuple[Path, int, int], frozenset[str]] = {}


def _registered_names(path: Path) -> frozenset[str]:
    """Method names ``path`` registers: ``register("<family>", "<name>", ...)`` calls (decorators)."""
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _registrations:
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            name = node.args[1]
            if func == "register" and isinstance(name, ast.Constant) and isinstance(name.value, str):
                names.add(name.value)
        _registrations[key] = frozenset(names)
    return _registrations[key]


def methods_named(strings: set[str]) -> list[Path]:
    """Modules of ``methods/`` that register a method named among ``strings``. The registry
    (``methods/registry.py``) finds methods by name at run time, so no import statement links a
    stage to the method it names; its config (or a default in its code) does."""
    found: set[Path] = set()
    for root in _roots():
        for path in sorted((root / "methods").glob("*.py")):
            if _registered_names(path) & strings:
                found.add(path.resolve())
    return sorted(found)


# ---------------------------------------------------------------- stage code
@dataclass(frozen=True)
class StageCode:
    """The import closure of a stage (its experiment module and the runner) and the datasets it names."""

    modules: tuple[Path, ...]
    datasets: tuple[str, ...]

    @property
    def files(self) -> list[Path]:
        """Every file whose change must re-run the stage: the modules and the dataset declarations."""
        decls = _declarations()
        return sorted(set(self.modules) | {decls[d].resolve() for d in self.datasets})

    def digest(self) -> str:
        """Contents only (sorted digests): moving a file without editing it is no change."""
        return text_sha256("\n".join(sorted(file_sha256(p) for p in self.modules)))


def stage_code(experiment: ModuleType, configs: Iterable[BaseModel] = (), datasets: Iterable[str] = ()) -> StageCode:
    """Closure of ``experiment`` + the runner, plus the loaders (and their closures) of ``datasets`` and of
    every dataset named in the closure's string constants or in ``configs`` (all the profiles a stage runs at)."""
    closure = import_closure([Path(experiment.__file__), source_root() / RUNNER_MODULE])
    strings = set().union(*(_config_strings(c.model_dump(mode="json")) for c in configs))
    while True:  # methods named by the configs or the code join the closure, with what they import
        grown = import_closure(closure + methods_named(_string_constants(closure) | strings))
        if grown == closure:
            break
        closure = grown
    names = sorted(set(datasets_named(_string_constants(closure) | strings)) | set(datasets))
    loaders = [p.with_suffix(".py") for n, p in _declarations().items()
               if n in names and p.with_suffix(".py").is_file()]
    if loaders:
        closure = import_closure(closure + loaders)
    return StageCode(tuple(closure), tuple(names))


# ---------------------------------------------------------------- upstream artefacts
def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str]:
    """Installed versions of ``names`` (``absent`` where not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def code_digest(starts: Iterable[Path], libraries: Iterable[str] = ()) -> str:
    """Digest of the source of ``starts`` and their import closure (contents only) and of the named
    libraries' versions: the key of a cache that code derives from its inputs."""
    versions = library_versions(libraries)
    return text_sha256(json.dumps([StageCode(tuple(import_closure(starts)), ()).digest(), versions], sort_keys=True))


def config_digest(config: BaseModel) -> str:
    return text_sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True))


@dataclass(frozen=True)
class Provenance:
    """What a stage run depends on; ``run_key`` digests it all."""

    replication: str
    stage: str
    profile: str
    config: str
    upstream: dict[str, str]
    datasets: dict[str, str]
    code: str
    modules: tuple[str, ...]
    libraries: dict[str, str] = field(default_factory=library_versions)

    @property
    def run_key(self) -> str:
        return text_sha256(json.dumps({"config": self.config, "upstream": self.upstream, "datasets": self.datasets,
                                       "code": self.code, "libraries": self.libraries}, sort_keys=True))

    def key_for(self, *parts: object) -> str:
        """Key of one run inside the stage (e.g. a variant and a seed)."""
        return text_sha256(json.dumps([self.run_key, *map(str, parts)]))[:32]

    def as_meta(self) -> dict[str, Any]:
        return {"run_key": self.run_key, "stage": f"{self.replication}/{self.stage}", "profile": self.profile,
                "config_digest": self.config, "upstream_digests": self.upstream, "dataset_digests": self.datasets,
                "code_digest": self.code, "modules": list(self.modules), "libraries": self.libraries}


_current: contextvars.ContextVar[Provenance | None] = contextvars.ContextVar("acbench_provenance", default=None)


def current() -> Provenance | None:
    """The provenance of the stage being run (set by the stage runner), or None outside a stage."""
    return _current.get()


@contextlib.contextmanager
def active(provenance: Provenance) -> Iterator[Provenance]:
    token = _current.set(provenance)
    try:
        yield provenance
    finally:
        _current.reset(token)


def run_key(config: BaseModel, *parts: object) -> str:
    """Key of a finished run, a resumable checkpoint or a cache: inside a stage, the stage's full
    provenance (+ ``parts``); outside one (a library call such as a test), the config alone."""
    prov = current()
    if prov is not None:
        return prov.key_for(*parts)
    return text_sha256(json.dumps([config_digest(config), "no-stage-context", *map(str, parts)]))[:32]


# ---------------------------------------------------------------- a stage's provenance
class UpstreamMissing(StageInputMissing):
    """A stage reads another stage's outputs that do not exist yet, or names a stage that does not exist."""


def upstream_artefact(replication: str, stage: str, profile: str) -> Path:
    """What a downstream stage's key digests of ``replication/stage``: its checkpoint folder when its
    experiment declares ``CHECKPOINTS = "model"``, else its ``metrics.json``."""
    from acbench.config import load_replication
    from acbench.experiments import get_experiment
    from acbench.stage_outputs import METRICS, outputs_of

    rep = load_replication(replication)
    if stage not in rep.params.stages:
        raise UpstreamMissing(f"{rep.params_path}: no stage {stage!r}",
                              f"name one of its stages: {sorted(rep.params.stages)}")
    if outputs_of(get_experiment(replication, rep.params.stages[stage])).checkpoints == "model":
        return paths.stage_checkpoint_dir(profile, replication, stage)
    return paths.stage_dir(profile, replication, stage) / METRICS


def _artefact_digest(path: Path, ref: str, profile: str) -> str:
    if path.is_dir() and any(path.iterdir()):
        return tree_sha256(path)
    if path.is_file():
        return file_sha256(path)
    replication, stage = ref.split("/")
    raise UpstreamMissing(f"{display(path)}: missing, but a stage reads it",
                          f"run {ref} first (acbench run {replication} --stage {stage} --profile {profile}, or dvc repro)")


@dataclass(frozen=True)
class StageInputs:
    """What a stage reads at any profile: its code (with the datasets it and its upstream stages read) and,
    per profile, the upstream stages its config names."""

    code: StageCode
    upstream: dict[str, tuple[tuple[str, str], ...]]  # profile -> (replication, stage), ...


def stage_inputs(replication: str, stage: str, _seen: frozenset = frozenset()) -> StageInputs:
    from acbench.config import load_replication
    from acbench.experiments import get_experiment
    from acbench.paths import PROFILES
    from acbench.stage_refs import upstream_stages

    rep = load_replication(replication)
    if stage not in rep.params.stages:
        raise UpstreamMissing(f"{rep.params_path}: no stage {stage!r}",
                              f"name one of its stages: {sorted(rep.params.stages)}")
    configs = {p: rep.stage_config(stage, p) for p in PROFILES}
    upstream = {p: tuple(upstream_stages(c, replication)) for p, c in configs.items()}
    datasets: set[str] = set()
    for ref in dict.fromkeys(r for refs in upstream.values() for r in refs):
        if ref not in _seen and ref != (replication, stage):
            datasets |= set(stage_inputs(*ref, _seen | {(replication, stage)}).code.datasets)
    experiment = get_experiment(replication, rep.params.stages[stage])
    return StageInputs(stage_code(experiment, configs.values(), datasets), upstream)


def stage_provenance(replication: str, stage: str, profile: str) -> Provenance:
    """The provenance of running ``replication/stage`` at ``profile`` now (upstream outputs must exist)."""
    from acbench.config import load_replication

    inputs = stage_inputs(replication, stage)
    upstream = {}
    for up_rep, up_stage in inputs.upstream[profile]:
        ref = f"{up_rep}/{up_stage}"
        upstream[ref] = _artefact_digest(upstream_artefact(up_rep, up_stage, profile), ref, profile)
    config = load_replication(replication).stage_config(stage, profile)
    return Provenance(replication, stage, profile, config_digest(config), upstream,
                      {d: dataset_digest(d) for d in inputs.code.datasets}, inputs.code.digest(),
                      tuple(display(p) for p in inputs.code.modules))

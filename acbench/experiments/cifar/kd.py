"""Train one student on CIFAR images with every distillation method and seed, from a trained CNN teacher.

Methods are chosen by name (``kind``) from the ``image_kd`` family of :mod:`methods.registry`, each
entry's other keys validated against that method's own parameter schema: ``none`` (cross-entropy
only, ``methods.no_distillation``), ``kd`` (``methods.logit_kd``), ``dkd``, ``fitnet``, ``ofa``,
``uhkd`` (their modules in ``methods/``); a new method is one more module there. A method object
holds its learnable parts (trained with the student) and computes its loss from the student's
cross-entropy, stage features and logits and the frozen teacher's. With the KD weights UHKD is the
KD baseline plus the frequency term, so UHKD − KD isolates that term.
Features: the three stage outputs of a CIFAR ResNet, the blocks at one, two and three thirds of the
depth of a ViT / MLP-Mixer (tokens turned into grids).

Teacher outputs are cached once per augmented view (:mod:`acbench.experiments.cifar.teacher_outputs`):
epoch e of every run trains on view e mod ``teacher_views`` of the training images (crop + flip drawn
from a fixed seed); the frozen teacher's logits and the small per-image outputs a method's loss reads
(UHKD's spectra) are computed once per view, kept on disk keyed by the teacher, data and code, and
reused by every method, seed and student stage. With ``data.valid_size`` and ``train.plateau``, each
run is scored on the validation images after every evaluation interval, stops at the validation
plateau, keeps its best-on-validation weights and is scored on the test images once. The
student's seed fixes its initialisation (the same for every method: seeded before the auxiliary
modules are built) and the data order, so methods are compared seed by seed. Finished runs are kept
in ``runs/`` of the stage's checkpoint folder; a killed stage resumes at the run it was in.
"""
from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field, SerializeAsAny, model_validator
from torch import nn
from tqdm.auto import tqdm

from acbench.config import Strict
from acbench.experiments.cifar.common import (CifarData, StudentSpec, build_student, evaluate_items, load_teacher,
                                              student_stages)
from acbench.experiments.cifar.teacher_outputs import LOGITS_ONLY, TEACHER_SIDE, Passthrough, TeacherCache, target_of
from acbench.experiments.stage_io import checkpoint_dir, sibling_stage
from acbench.items import RECORD_KEY, ItemLog, Outcomes, without_outcomes
from acbench.provenance import run_key
from acbench.results import write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage
from acbench.training import TrainSettings, train
from acbench.training.loop import steps_per_epoch
from acbench.vision.cifar_tensors import default_cache_dir, normalize
from acbench.vision.students import features_and_logits
from acbench.vision.timm_models import TimmSpec
from methods.registry import MethodParams, UnknownMethod, lookup, parse_params

FAMILY = "image_kd"

CHECKPOINTS = "runs"
TABLE = True
ITEMS = True  # per-item records under items/ (acbench.items)


class Method(Strict):
    """One entry of ``methods``: ``name``, ``kind`` (a registered ``image_kd`` method) and that
    method's own parameters beside them (validated against its schema; unknown keys are errors)."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: str
    params: SerializeAsAny[MethodParams]

    @model_validator(mode="before")
    @classmethod
    def _params_of_kind(cls, data):
        if not isinstance(data, dict) or "params" in data or "kind" not in data:
            return data
        rest = {k: v for k, v in data.items() if k not in ("name", "kind")}
        try:
            params = parse_params(FAMILY, data["kind"], rest)
        except UnknownMethod as exc:
            raise ValueError(str(exc)) from None
        return {"name": data.get("name"), "kind": data["kind"], "params": params}


class Config(Strict):
    teacher_stage: SiblingStage
    data: CifarData
    student: StudentSpec | TimmSpec
    methods: list[Method] = Field(min_length=1)
    seeds: list[int] = Field([0], min_length=1)
    train: TrainSettings
    eval_batch: int = Field(256, ge=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="of the one cross-entropy every method uses")
    calibration_images: int = Field(256, ge=1, description="the fixed batch (first images of view 0) a method "
                                    "with calibrate() sets its scales on, the student at initialisation")
    baselines: list[str] = Field(default_factory=list, description="methods the target method is compared with")
    target: str = Field("uhkd", description="the method whose gain over the best baseline is reported")
    max_seeds: int | None = Field(None, ge=1)
    threads: int | None = Field(None, ge=1)
    teacher_views: int | None = Field(None, ge=1, description="augmented views of the training images whose "
                                      "teacher outputs are cached; epoch e uses view e mod teacher_views "
                                      "(None: one per epoch)")
    cache_teacher: bool = Field(True, description="cache the teacher's outputs per view on disk (False: the "
                                "teacher runs on every batch, e.g. a long schedule with a fresh view per epoch)")
    seed_overrides: dict[str, list[int]] = Field(default_factory=dict, description="method name -> its seeds "
                                                 "(e.g. one seed for a secondary row); others use seeds")

    def model_post_init(self, __context) -> None:
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"method names repeat: {names}")
        unknown = sorted(set(self.baselines + [self.target]) - set(names)) if self.baselines else []
        if unknown:
            raise ValueError(f"baselines/target name unknown methods {unknown}")


def student_name(spec: StudentSpec | TimmSpec) -> str:
    return spec.name if isinstance(spec, TimmSpec) else spec.kind


class Distillation(nn.Module):
    """The student plus the method's learnable parts (the submodule named after the method's kind),
    trained together; ``loss(images, labels, t_feats, t_logits, progress)``."""

    def __init__(self, method: Method, student: nn.Module, stages: list[int], teacher_shapes, num_classes: int,
                 sample: torch.Tensor, label_smoothing: float = 0.0):
        super().__init__()
        self.method, self.student, self.stages = method, student, stages
        self.label_smoothing = label_smoothing
        with torch.no_grad():
            feats, _ = features_and_logits(student, sample, stages)
        student_shapes = [tuple(f.shape[1:]) for f in feats]
        impl = lookup(FAMILY, method.kind).impl
        self.add_module(method.kind, impl(method.params, student_shapes, teacher_shapes, num_classes))

    def loss(self, images, labels, t_feats, t_logits, progress: float) -> tuple[torch.Tensor, dict[str, float]]:
        feats, logits = features_and_logits(self.student, images, self.stages)
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return getattr(self, self.method.kind).loss(ce, feats, logits, t_feats, t_logits, labels, progress)

    @torch.no_grad()
    def calibrate(self, images, labels, t_feats, t_logits) -> dict[str, float]:
        """Let a method with ``calibrate`` fix its scales on this batch (training mode, no update kept:
        batch-norm statistics are restored; only the method's ``calibration*`` buffers change)."""
        impl = getattr(self, self.method.kind)
        if not hasattr(impl, "calibrate"):
            return {}
        kept = {k: v.clone() for k, v in self.state_dict().items() if ".calibration" not in k and ".calibrated" not in k}
        feats, logits = features_and_logits(self.student, images, self.stages)
        ce = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        out = impl.calibrate(ce, feats, logits, t_feats, t_logits, labels)
        self.load_state_dict({**self.state_dict(), **kept})
        return out


def teacher_target(method: Method, model: Distillation, cache: TeacherCache) -> str | None:
    """What ``method``'s loss reads from the teacher: ``"logits"``, a cached teacher-side target (its
    module in ``model`` is then replaced by a pass-through), or None (raw features: the teacher runs)."""
    if method.kind in LOGITS_ONLY:
        return "logits"
    module = getattr(model, method.kind)
    found = target_of(method.kind, module, method.params.model_dump_json())
    if found is None:
        return None
    name, side = found
    cache.register(name, side, [Path(lookup(FAMILY, method.kind).impl.__module__.replace(".", "/") + ".py")])
    setattr(module, TEACHER_SIDE[method.kind], Passthrough())
    return name


def register_targets(config: Config, cache: TeacherCache) -> None:
    """Declare every cacheable teacher-side target of the stage's methods before training, so each view's
    targets are computed together, in one pass of the teacher."""
    for method in config.methods:
        if method.kind in TEACHER_SIDE:
            student = build_student(config.student, config.data.num_classes)
            model = Distillation(method, student, student_stages(config.student), cache.shapes,
                                 config.data.num_classes, normalize(cache.images[:2]))
            teacher_target(method, model, cache)


def run_one(config: Config, method: Method, seed: int, cache: TeacherCache, valid_set, test_set, folder: Path,
            tag: str) -> dict:
    torch.manual_seed(seed)
    student = build_student(config.student, config.data.num_classes)
    stages = student_stages(config.student)
    model = Distillation(method, student, stages, cache.shapes, config.data.num_classes,
                         normalize(cache.images[:2]), config.label_smoothing)
    target = teacher_target(method, model, cache) if config.cache_teacher else None
    # after teacher_target: a cached teacher side reaches calibrate() as the loss will see it
    calibration = model.calibrate(*cache.batch(0, torch.arange(min(config.calibration_images, len(cache.labels))),
                                                target))
    settings = config.train.model_copy(update={"seed": seed})
    examples = list(range(len(cache.labels)))
    per_epoch = steps_per_epoch(len(examples), settings.batch_size)
    total_steps = max(1, math.ceil(settings.epochs * per_epoch))

    def loss_fn(module, index, step):
        images, labels, t_feats, t_logits = cache.batch(step // per_epoch, index, target)
        return module.loss(images, labels, t_feats, t_logits, step / total_steps)

    def validate(module) -> float:
        return evaluate_items(module.student, valid_set, config.eval_batch, f"{method.name} s{seed} valid").accuracy

    plateau = settings.plateau is not None
    if plateau and valid_set is None:
        raise ValueError("train.plateau needs a validation split: set data.valid_size")
    result = train(model, examples, lambda indices: torch.tensor(indices, dtype=torch.long), loss_fn, settings,
                   folder / "training", desc=f"{student_name(config.student)} {method.name} s{seed}", run_key=tag,
                   validate=validate if plateau else None)
    outcomes = evaluate_items(student, test_set, config.eval_batch, f"{method.name} s{seed} test")
    done = {"accuracy": outcomes.accuracy, RECORD_KEY: outcomes.to_json(), "run_key": tag,
            "train_seconds": result.seconds, "steps": result.steps, "calibration": calibration,
            "seconds_per_step": result.seconds / max(1, result.steps),
            "teacher_target": target or "features",
            "loss_curve": downsample(result.losses), "student_params": sum(p.numel() for p in student.parameters()),
            "final_logs": {k: statistics.fmean(v[-20:]) for k, v in result.logs.items()}}
    if plateau:
        done.update({"valid_curve": result.valid_scores, "valid_steps": result.valid_steps,
                     "valid_accuracy": result.best_score, "best_epoch": result.best_step / per_epoch,
                     "epochs_trained": result.steps / per_epoch, "plateau_reached": bool(result.plateau_reached),
                     "valid_last_move": (abs(result.valid_scores[-1] - result.valid_scores[-2])
                                         if len(result.valid_scores) > 1 else None)})
    return done


def downsample(values: list[float], points: int = 100) -> list[float]:
    """Means of ``points`` equal windows (the training curve kept in metrics.json)."""
    if len(values) <= points:
        return list(values)
    size = len(values) / points
    return [statistics.fmean(values[int(i * size):max(int((i + 1) * size), int(i * size) + 1)]) for i in range(points)]


def run(config: Config, out_dir: Path) -> dict[str, float]:
    if config.threads:
        torch.set_num_threads(config.threads)
    started = time.perf_counter()
    teacher = load_teacher(checkpoint_dir(sibling_stage(out_dir, config.teacher_stage)))
    train_set = config.data.load("train")
    valid_set = config.data.load("valid") if config.data.valid_size else None
    test_set = config.data.load("test")
    cache: TeacherCache | None = None
    views = config.teacher_views or math.ceil(config.train.epochs)
    root = checkpoint_dir(out_dir)
    metrics: dict[str, float] = {}
    runs: dict[str, dict] = {}
    items = ItemLog()
    for method in config.methods:
        seeds = config.seed_overrides.get(method.name, config.seeds)[:config.max_seeds]
        for seed in seeds:
            name, tag = f"{method.name}-s{seed}", run_key(config, method.name, seed)
            record = root / "runs" / f"{name}.json"
            done = json.loads(record.read_text()) if record.is_file() else None
            if done is None or done.get("run_key") != tag or RECORD_KEY not in done:
                if cache is None:
                    cache = TeacherCache(teacher, train_set, views, config.data.augment,
                                         cache_dir=default_cache_dir() if config.cache_teacher else None,
                                         key_parts=[config.data.model_dump_json(exclude={"test_limit"})],
                                         dataset=config.data.dataset)
                    if config.cache_teacher:
                        register_targets(config, cache)
                done = run_one(config, method, seed, cache, valid_set, test_set, root / name, tag)
                record.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(record, json.dumps(done))
                shutil.rmtree(root / name, ignore_errors=True)
            items.add_outcomes(f"{method.name}@s{seed}", Outcomes.from_json(done[RECORD_KEY]))
            runs[name] = without_outcomes(done)
            metrics[f"{method.name}.accuracy@s{seed}"] = done["accuracy"]
        accs = [runs[f"{method.name}-s{s}"]["accuracy"] for s in seeds]
        metrics[f"{method.name}.accuracy.mean"] = statistics.fmean(accs)
        metrics[f"{method.name}.accuracy.std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
        metrics[f"{method.name}.seeds"] = len(accs)
    if config.baselines:
        best = max(config.baselines, key=lambda b: metrics[f"{b}.accuracy.mean"])
        paired = [s for s in config.seeds[:config.max_seeds]
                  if f"{config.target}-s{s}" in runs and f"{best}-s{s}" in runs]
        diffs = [runs[f"{config.target}-s{s}"]["accuracy"] - runs[f"{best}-s{s}"]["accuracy"] for s in paired]
        metrics["gain_over_best_baseline"] = statistics.fmean(diffs)
        metrics["gain_over_best_baseline.std"] = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        metrics["gain_over_best_baseline.n"] = len(diffs)
    metrics["student_params"] = next(iter(runs.values()))["student_params"]
    metrics["train_images"], metrics["test_images"] = len(train_set[0]), len(test_set[0])
    metrics["valid_images"] = len(valid_set[0]) if valid_set is not None else 0
    metrics["teacher_views"] = views
    moves = [r["valid_last_move"] for r in runs.values() if r.get("valid_last_move") is not None]
    if moves:
        metrics["valid_last_move.max"] = max(moves)
    metrics["stage_seconds"] = time.perf_counter() - started
    extra = {"best_baseline": best if config.baselines else None, "methods": [m.name for m in config.methods],
             "runs": {k: {kk: vv for kk, vv in v.items() if kk != "loss_curve"} for k, v in runs.items()},
             "loss_curves": {k: v["loss_curve"] for k, v in runs.items()},
             "valid_curves": {k: v["valid_curve"] for k, v in runs.items() if "valid_curve" in v},
             "data_split": config.data.split_record(valid_set),
             "teacher_images_run": cache.teacher_images if cache is not None else 0}  # 0: every view was cached
    write_text_atomic(out_dir / "table.md", table(config, metrics, extra["best_baseline"]))
    exact = (["student_params", "train_images", "valid_images", "test_images", "teacher_views"]
             + [k for k in metrics if k.endswith((".seeds", ".n"))])
    write_metrics(out_dir, metrics, exact, extra, items.write(out_dir))
    return metrics


def table(config: Config, metrics: dict[str, float], best: str | None) -> str:
    s = config.student
    lines = [f"Student {s.kind} ({metrics['student_params'] / 1e6:.2f}M parameters), teacher ResNet-56; top-1 (%) on "
             f"{int(metrics['test_images'])} test images, mean ± std over seeds.", "",
             "| method | top-1 | seeds |", "|---|---|---|"]
    for m in config.methods:
        mean, std, n = (metrics[f"{m.name}.{k}"] for k in ("accuracy.mean", "accuracy.std", "seeds"))
        mark = " (best baseline)" if m.name == best else ""
        lines.append(f"| {m.name}{mark} | {mean:.2f}" + (f" ± {std:.2f}" if n > 1 else "") + f" | {int(n)} |")
    if best:
        lines += ["", f"{config.target} − {best}, per seed: {metrics['gain_over_best_baseline']:+.2f} ± "
                      f"{metrics['gain_over_best_baseline.std']:.2f} pts (n={int(metrics['gain_over_best_baseline.n'])})."]
    return "\n".join(lines) + "\n"

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

Teacher outputs are computed once per stage (:class:`TeacherCache`): epoch e of every run trains on
the same augmented view e of the training subset (crop + flip drawn from a fixed seed), so the
frozen teacher's features and logits on each view are reused by every method and seed. The
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
from acbench.experiments.cifar.common import (CifarData, StudentSpec, Teacher, build_student, evaluate_items,
                                              load_teacher, student_stages)
from acbench.experiments.stage_io import checkpoint_dir, sibling_stage
from acbench.items import RECORD_KEY, ItemLog, Outcomes, without_outcomes
from acbench.provenance import run_key
from acbench.results import write_metrics, write_text_atomic
from acbench.stage_refs import SiblingStage
from acbench.training import TrainSettings, train
from acbench.training.loop import steps_per_epoch
from acbench.vision.cifar_tensors import augment, normalize
from acbench.vision.students import features_and_logits
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
    max_seeds: int | None = Field(None, ge=1, description="run only the first seeds of the stage (e.g. a control)")

    @model_validator(mode="before")
    @classmethod
    def _params_of_kind(cls, data):
        if not isinstance(data, dict) or "params" in data or "kind" not in data:
            return data
        rest = {k: v for k, v in data.items() if k not in ("name", "kind", "max_seeds")}
        try:
            params = parse_params(FAMILY, data["kind"], rest)
        except UnknownMethod as exc:
            raise ValueError(str(exc)) from None
        return {"name": data.get("name"), "kind": data["kind"], "params": params, "max_seeds": data.get("max_seeds")}


class Config(Strict):
    teacher_stage: SiblingStage
    data: CifarData
    student: StudentSpec
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

    def model_post_init(self, __context) -> None:
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"method names repeat: {names}")
        unknown = sorted(set(self.baselines + [self.target]) - set(names)) if self.baselines else []
        if unknown:
            raise ValueError(f"baselines/target name unknown methods {unknown}")


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


class TeacherCache:
    """The teacher's stage features and logits on ``views`` fixed augmented views of the training images."""

    def __init__(self, teacher: Teacher, data: tuple[torch.Tensor, torch.Tensor], views: int, augmented: bool,
                 batch_size: int = 256, seed: int = 0):
        images, self.labels = data
        self.views = [augment(images, torch.Generator().manual_seed(seed * 7919 + v)) if augmented else images
                      for v in range(views)]
        self.features: list[list[torch.Tensor]] = []
        self.logits: list[torch.Tensor] = []
        for v, view in enumerate(self.views):
            feats, logits = [], []
            for start in tqdm(range(0, len(view), batch_size), desc=f"teacher outputs, view {v + 1}/{views}",
                              leave=False, mininterval=5):
                f, out = teacher.features(normalize(view[start:start + batch_size]))
                feats.append(f)
                logits.append(out)
            self.features.append([torch.cat(level) for level in zip(*feats)])
            self.logits.append(torch.cat(logits))

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(f.shape[1:]) for f in self.features[0]]

    def batch(self, view: int, index: torch.Tensor):
        """(normalised images, labels, teacher features, teacher logits) of ``index`` in view ``view``."""
        view = min(view, len(self.views) - 1)
        return (normalize(self.views[view][index]), self.labels[index],
                [f[index] for f in self.features[view]], self.logits[view][index])


def run_one(config: Config, method: Method, seed: int, cache: TeacherCache, test_set, folder: Path, tag: str) -> dict:
    torch.manual_seed(seed)
    student = build_student(config.student, config.data.num_classes)
    stages = student_stages(config.student)
    model = Distillation(method, student, stages, cache.shapes, config.data.num_classes,
                         normalize(cache.views[0][:2]), config.label_smoothing)
    calibration = model.calibrate(*cache.batch(0, torch.arange(min(config.calibration_images, len(cache.labels)))))
    settings = config.train.model_copy(update={"seed": seed})
    examples = list(range(len(cache.labels)))
    per_epoch = steps_per_epoch(len(examples), settings.batch_size)
    total_steps = max(1, math.ceil(settings.epochs * per_epoch))

    def loss_fn(module, index, step):
        images, labels, t_feats, t_logits = cache.batch(step // per_epoch, index)
        return module.loss(images, labels, t_feats, t_logits, step / total_steps)

    result = train(model, examples, lambda indices: torch.tensor(indices, dtype=torch.long), loss_fn, settings,
                   folder / "training", desc=f"{config.student.kind} {method.name} s{seed}", run_key=tag)
    outcomes = evaluate_items(student, test_set, config.eval_batch, f"{method.name} s{seed} test")
    return {"accuracy": outcomes.accuracy, RECORD_KEY: outcomes.to_json(), "run_key": tag,
            "train_seconds": result.seconds, "steps": result.steps, "calibration": calibration,
            "loss_curve": downsample(result.losses), "student_params": sum(p.numel() for p in student.parameters()),
            "final_logs": {k: statistics.fmean(v[-20:]) for k, v in result.logs.items()}}


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
    test_set = config.data.load("test")
    cache: TeacherCache | None = None
    root = checkpoint_dir(out_dir)
    metrics: dict[str, float] = {}
    runs: dict[str, dict] = {}
    seeds = config.seeds[:config.max_seeds]
    items = ItemLog()
    for method in config.methods:
        for seed in seeds[:method.max_seeds]:
            name, tag = f"{method.name}-s{seed}", run_key(config, method.name, seed)
            record = root / "runs" / f"{name}.json"
            done = json.loads(record.read_text()) if record.is_file() else None
            if done is None or done.get("run_key") != tag or RECORD_KEY not in done:
                if cache is None:
                    cache = TeacherCache(teacher, train_set, math.ceil(config.train.epochs), config.data.augment)
                done = run_one(config, method, seed, cache, test_set, root / name, tag)
                record.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(record, json.dumps(done))
                shutil.rmtree(root / name, ignore_errors=True)
            items.add_outcomes(f"{method.name}@s{seed}", Outcomes.from_json(done[RECORD_KEY]))
            runs[name] = without_outcomes(done)
            metrics[f"{method.name}.accuracy@s{seed}"] = done["accuracy"]
        accs = [runs[f"{method.name}-s{s}"]["accuracy"] for s in seeds[:method.max_seeds]]
        metrics[f"{method.name}.accuracy.mean"] = statistics.fmean(accs)
        metrics[f"{method.name}.accuracy.std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
        metrics[f"{method.name}.seeds"] = len(accs)
    if config.baselines:
        best = max(config.baselines, key=lambda b: metrics[f"{b}.accuracy.mean"])
        diffs = [runs[f"{config.target}-s{s}"]["accuracy"] - runs[f"{best}-s{s}"]["accuracy"] for s in seeds]
        metrics["gain_over_best_baseline"] = statistics.fmean(diffs)
        metrics["gain_over_best_baseline.std"] = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        metrics["gain_over_best_baseline.n"] = len(diffs)
    metrics["student_params"] = next(iter(runs.values()))["student_params"]
    metrics["train_images"], metrics["test_images"] = len(train_set[0]), len(test_set[0])
    metrics["stage_seconds"] = time.perf_counter() - started
    extra = {"best_baseline": best if config.baselines else None, "methods": [m.name for m in config.methods],
             "runs": {k: {kk: vv for kk, vv in v.items() if kk != "loss_curve"} for k, v in runs.items()},
             "loss_curves": {k: v["loss_curve"] for k, v in runs.items()}}
    write_text_atomic(out_dir / "table.md", table(config, metrics, extra["best_baseline"]))
    exact = ["student_params", "train_images", "test_images"] + [k for k in metrics if k.endswith((".seeds", ".n"))]
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

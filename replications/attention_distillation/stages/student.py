"""Distil a smaller solver from the trained teacher with one loss, then fine-tune it on the task.

For every variant (a distillation loss) and seed:
1. build the student: the teacher's tokenizer and output vocabulary, an encoder of ``student.layers`` x
   ``student.hidden`` (the teacher's head count unless set). ``init: teacher_layers`` copies the
   embeddings, the teacher layers g(m) of TinyBERT's uniform map and the decoder (needs the teacher's
   width); ``random`` initialises everything (BERT init) — the only choice when the width differs;
2. distillation phase (``distill``), the teacher frozen: an attention loss of
   :mod:`methods.attention_alignment` trains the encoder alone (MiniLM and MiniLMv2 on
   the last layers, attention MSE over the uniform layer map); ``logit_kd`` trains the whole solver on
   T²·KL of the output distributions (teacher forcing); ``none`` skips the phase. With
   ``distill.plateau`` the phase stops at the plateau of the same loss on the teacher's validation split
   (eval mode), scored relative to its value before distillation (``min_delta`` 0.01 = 1% of it), and
   keeps the best weights;
3. fine-tuning phase (``finetune``): task cross-entropy; with ``finetune.plateau`` it stops at the
   plateau of validation answer accuracy and keeps the best weights (the teacher's rule);
4. answer accuracy on the teacher's test split (one fold); item ids ``fold<k>/<id>``
   (:mod:`acbench.stats.folds`), so a pooled stage (``stages/pooled.py``) can join the folds.
``gaps`` compare two variants seed by seed (same seed = same data order): mean and spread of the
per-seed differences. Finished runs are kept in ``runs/<variant>-s<seed>.json`` of the stage's
checkpoint folder, so a killed stage resumes at the run it was in (each phase from its last checkpoint).
"""
from __future__ import annotations

import copy
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_serializer

from acbench.config import Strict
from acbench.experiments.mwp.teacher import solver_splits
from acbench.experiments.stage_io import checkpoint_dir, seed_summary
from acbench.provenance import run_key
from acbench.stage_refs import StageRef
from acbench.results import METRICS_FILE, read_metrics, write_metrics, write_text_atomic
from acbench.items import RECORD_KEY, ItemLog, Outcomes, without_outcomes
from acbench.solver.data import trainable
from acbench.stats.folds import fold_item
from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import collate
from acbench.solver.io import set_threads
from acbench.solver.losses import distill_loss, task_loss
from acbench.solver.settings import SolverTrainSettings, param_groups
from acbench.solver.model import MWPSolver
from acbench.training import train
from methods.attention_alignment import AlignLoss, align_params, alignment_loss, qkv_layers, uniform_layer_map
from methods.attention_capture import capture_qkv

Loss = Literal["logit_kd", "none"] | AlignLoss  # or a registered attention-alignment loss (methods.registry)

CHECKPOINTS = "runs"
TABLE = True
PLOTS = ("accuracy.png",)
ITEMS = True  # per-item records under items/ (acbench.items)


class StudentShape(Strict):
    layers: int = Field(ge=1)
    hidden: int = Field(ge=8)
    heads: int | None = Field(None, ge=1, description="default: the teacher's head count")
    intermediate: int | None = Field(None, ge=8, description="default: the teacher's FFN/hidden ratio x hidden")
    init: Literal["teacher_layers", "random"] = "teacher_layers"


class Variant(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    loss: Loss
    loss_params: dict[str, Any] = Field({}, description="parameters of an attention-alignment loss (its schema in "
                                                        "methods/), e.g. attention_mse: {form: probabilities}")
    seeds: list[int] = Field([0], min_length=1)

    def model_post_init(self, __context) -> None:
        if self.loss in ("logit_kd", "none"):
            if self.loss_params:
                raise ValueError(f"variant {self.name!r}: loss {self.loss!r} takes no loss_params")
        else:
            align_params(self.loss, self.loss_params)

    @model_serializer(mode="wrap")
    def _omit_empty_params(self, handler):
        """Leave ``loss_params`` out while empty, so a variant's fingerprint reads as before the field existed."""
        data = handler(self)
        if not data.get("loss_params"):
            data.pop("loss_params", None)
        return data


class Gap(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    better: str = Field(description="variant expected to be more accurate")
    worse: str


class Config(Strict):
    teacher: StageRef = Field(description="<replication>/<stage> of a mwp_teacher stage")
    student: StudentShape
    variants: list[Variant] = Field(min_length=1)
    gaps: list[Gap] = []
    distill: SolverTrainSettings
    finetune: SolverTrainSettings
    temperature: float = Field(2.0, gt=0, description="logit_kd")
    relation_heads: int = Field(12, ge=1, description="minilmv2")
    eval_batch: int = Field(64, ge=1)
    max_seeds: int | None = Field(None, ge=1, description="run only each variant's first N seeds (smoke)")
    threads: int | None = Field(None, ge=1)

    def model_post_init(self, __context) -> None:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names repeat: {names}")
        for gap in self.gaps:
            missing = {gap.better, gap.worse} - set(names)
            if missing:
                raise ValueError(f"gap {gap.name!r} names unknown variants {sorted(missing)}")


def stage_of(out_dir: Path, ref: str) -> Path:
    """Results folder of ``<replication>/<stage>`` at the profile of ``out_dir`` (results/<profile>/<rep>/<stage>)."""
    return Path(out_dir).parent.parent / ref


def build_student(teacher: MWPSolver, shape: StudentShape, seed: int) -> MWPSolver:
    from transformers import BertModel

    config = copy.deepcopy(teacher.encoder.config)
    ratio = config.intermediate_size / config.hidden_size
    config.num_hidden_layers, config.hidden_size = shape.layers, shape.hidden
    config.num_attention_heads = shape.heads or config.num_attention_heads
    config.intermediate_size = shape.intermediate or round(ratio * shape.hidden)
    config._attn_implementation = "eager"
    if shape.hidden % config.num_attention_heads:
        raise ValueError(f"student hidden {shape.hidden} is not divisible by {config.num_attention_heads} heads")
    first = teacher.decoder.layers[0]
    torch.manual_seed(seed)
    student = MWPSolver(BertModel(config, add_pooling_layer=False), teacher.vocab, len(teacher.decoder.layers),
                        first.self_attn.num_heads, teacher.max_steps, first.dropout.p)
    if shape.init == "teacher_layers":
        if shape.hidden != teacher.encoder.config.hidden_size or config.num_attention_heads != teacher.encoder.config.num_attention_heads:
            raise ValueError("init teacher_layers needs the teacher's width and head count; use init: random")
        source = dict(uniform_layer_map(shape.layers, teacher.encoder.config.num_hidden_layers))
        prefix = "encoder.encoder.layer."
        weights = {}
        for key, value in teacher.state_dict().items():
            if key.startswith(prefix):
                index, rest = key[len(prefix):].split(".", 1)
                for s_layer, t_layer in source.items():
                    if t_layer == int(index):
                        weights[f"{prefix}{s_layer}.{rest}"] = value.clone()
            else:
                weights[key] = value.clone()
        student.load_state_dict(weights)
    return student


def _encoder_loss(variant: Variant, student: MWPSolver, teacher: MWPSolver, relation_heads: int):
    """The distillation-phase loss: ``variant.loss`` between the student's and the teacher's encoder, its
    attention maps derived from captured Q/K (before attention dropout: :mod:`methods.attention_capture`)."""
    kind = variant.loss
    layer_map = (uniform_layer_map(student.encoder.config.num_hidden_layers, teacher.encoder.config.num_hidden_layers)
                 if kind == "attention_mse" else
                 [(student.encoder.config.num_hidden_layers - 1, teacher.encoder.config.num_hidden_layers - 1)])
    s_layers, t_layers = qkv_layers(kind, layer_map)
    params = align_params(kind, variant.loss_params)

    def loss_fn(module, batch, step):
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with capture_qkv(student.encoder, s_layers) as s_qkv:
            module(**inputs)
        with torch.no_grad(), capture_qkv(teacher.encoder, t_layers) as t_qkv:
            teacher.encoder(**inputs)
        value = alignment_loss(kind, layer_map, batch["attention_mask"], student_qkv=s_qkv, teacher_qkv=t_qkv,
                               relation_heads=relation_heads, params=params)
        return value, {kind: float(value.detach())}
    return loss_fn


def _mean_loss(loss_fn, module, batches) -> float:
    """``loss_fn`` averaged over ``batches`` in eval mode, without gradients (no dropout)."""
    module.eval()
    with torch.no_grad():
        return statistics.fmean(float(loss_fn(module, batch, 0)[0]) for batch in batches)


def _relative_loss_score(loss_fn, module, batches):
    """validate(module) -> −(validation loss / its value before training): higher is better, and the
    plateau's ``min_delta`` is a share of the starting loss, whatever the loss's scale."""
    start = max(_mean_loss(loss_fn, module, batches), 1e-12)
    return lambda m: -_mean_loss(loss_fn, m, batches) / start


def _phase_record(name: str, result, spe: int) -> dict:
    out = {f"{name}_seconds": result.seconds, f"{name}_final_loss": statistics.fmean(result.losses[-10:]),
           f"{name}_steps": result.steps}
    if result.plateau_reached is not None:
        out.update({f"{name}_plateau_reached": float(result.plateau_reached),
                    f"{name}_best_epoch": result.best_step / spe, f"{name}_best_valid": result.best_score})
    return out


def run_one(config: Config, variant: Variant, seed: int, teacher, splits, folder: Path) -> dict:
    train_examples, valid_examples, test_examples = splits.train, splits.valid, splits.test
    student = build_student(teacher, config.student, seed).train()
    collate_fn = lambda b: collate(b, teacher.vocab)  # noqa: E731
    tag = run_key(config, variant.name, seed)
    valid_train = trainable(valid_examples, teacher.max_steps)
    valid_batches = [collate_fn(valid_train[i:i + config.eval_batch])
                     for i in range(0, len(valid_train), config.eval_batch)]
    lengths = [len(e.input_ids) for e in train_examples]
    record: dict = {}
    if variant.loss != "none":
        settings = config.distill.model_copy(update={"seed": seed})
        if settings.plateau is not None and not valid_batches:
            raise ValueError("distill.plateau needs the teacher's validation split (data.valid_fraction)")
        if variant.loss == "logit_kd":
            def loss_fn(module, batch, step):
                with torch.no_grad():
                    t_logits = teacher(batch).logits
                value = distill_loss(module(batch).logits, t_logits, batch["labels"], config.temperature)
                return value, {"kl": float(value.detach())}
            module, groups = student, param_groups(student, settings)
        else:
            loss_fn = _encoder_loss(variant, student, teacher, config.relation_heads)
            module, groups = student.encoder, None
        validate = _relative_loss_score(loss_fn, module, valid_batches) if settings.plateau else None
        module.train()
        result = train(module, train_examples, collate_fn, loss_fn, settings, folder / "distill",
                       param_groups=groups, desc=f"{variant.name} s{seed} distill", run_key=tag,
                       validate=validate, lengths=lengths)
        record.update(_phase_record("distill", result, len(train_examples) // settings.batch_size))
        student.train()
    settings = config.finetune.model_copy(update={"seed": seed})
    validate = None
    if settings.plateau is not None:
        if not valid_examples:
            raise ValueError("finetune.plateau needs the teacher's validation split (data.valid_fraction)")
        validate = lambda m: answer_outcomes(m, valid_examples, config.eval_batch, "valid").accuracy  # noqa: E731
    result = train(student, train_examples, collate_fn,
                   lambda module, batch, step: (task_loss(module(batch).logits, batch["labels"]), {}),
                   settings, folder / "finetune", param_groups=param_groups(student, settings),
                   desc=f"{variant.name} s{seed} fine-tune", run_key=tag, validate=validate, lengths=lengths)
    record.update(_phase_record("finetune", result, len(train_examples) // settings.batch_size))
    outcomes = answer_outcomes(student.eval(), test_examples, config.eval_batch, f"{variant.name} s{seed} test")
    fold = splits.data.fold or 0
    outcomes = Outcomes(tuple(fold_item(fold, i) for i in outcomes.ids), outcomes.correct, outcomes.predictions)
    return {"accuracy": outcomes.accuracy, RECORD_KEY: outcomes.to_json(), "run_key": tag, "fold": fold,
            "encoder_params": sum(p.numel() for p in student.encoder.parameters()), **record}


def plateau_share(runs: dict[str, dict]) -> float:
    """% of the trained phases (distillation and fine-tuning of every run) that stopped at their validation
    plateau; phases without plateau settings do not count (100 when none has them)."""
    flags = [r[k] for r in runs.values() for k in r if k.endswith("_plateau_reached")]
    return 100.0 * statistics.fmean(flags) if flags else 100.0


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    started = time.perf_counter()
    teacher_dir = stage_of(out_dir, config.teacher)
    splits = solver_splits(teacher_dir)
    teacher = splits.teacher
    teacher_accuracy = read_metrics(teacher_dir / METRICS_FILE)["metrics"]["accuracy"]
    root = checkpoint_dir(out_dir)
    metrics: dict[str, float] = {"teacher.accuracy": teacher_accuracy}
    runs: dict[str, dict] = {}
    items = ItemLog()
    for variant in config.variants:
        accuracies = []
        for seed in variant.seeds[:config.max_seeds]:
            name = f"{variant.name}-s{seed}"
            record = root / "runs" / f"{name}.json"
            done = json.loads(record.read_text()) if record.is_file() else None
            if done is None or done.get("run_key") != run_key(config, variant.name, seed) or RECORD_KEY not in done:
                done = run_one(config, variant, seed, teacher, splits, root / name)
                record.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(record, json.dumps(done, indent=1))
                shutil.rmtree(root / name, ignore_errors=True)
            items.add_outcomes(f"{variant.name}@s{seed}", Outcomes.from_json(done[RECORD_KEY]))
            runs[name] = without_outcomes(done)
            accuracies.append(done["accuracy"])
            metrics[f"{variant.name}.accuracy@s{seed}"] = done["accuracy"]
        metrics.update(seed_summary(variant.name, accuracies))
    metrics["student.encoder_params"] = next(iter(runs.values()))["encoder_params"]
    metrics["teacher.encoder_params"] = sum(p.numel() for p in teacher.encoder.parameters())
    metrics["runs.plateau_pct"] = plateau_share(runs)
    for gap in config.gaps:
        seeds = [s for s in _variant(config, gap.better).seeds[:config.max_seeds]
                 if s in _variant(config, gap.worse).seeds[:config.max_seeds]]
        diffs = [runs[f"{gap.better}-s{s}"]["accuracy"] - runs[f"{gap.worse}-s{s}"]["accuracy"] for s in seeds]
        metrics[f"gap.{gap.name}"] = statistics.fmean(diffs)
        metrics[f"gap.{gap.name}.std"] = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
        metrics[f"gap.{gap.name}.n"] = len(diffs)
    metrics["stage_seconds"] = time.perf_counter() - started
    write_text_atomic(out_dir / "table.md", table(config, metrics))
    exact = [k for k in metrics if k.endswith((".seeds", "encoder_params")) or k.endswith(".n")]
    write_metrics(out_dir, metrics, exact, {"runs": runs, "teacher": config.teacher, "fold": splits.data.fold or 0},
                  items.write(out_dir))
    return metrics


def _variant(config: Config, name: str) -> Variant:
    return next(v for v in config.variants if v.name == name)


def table(config: Config, metrics: dict[str, float]) -> str:
    s = config.student
    lines = [f"Student {s.layers} layers x {s.hidden} hidden ({s.init} init, "
             f"{metrics['student.encoder_params'] / 1e6:.1f}M encoder parameters; teacher "
             f"{metrics['teacher.encoder_params'] / 1e6:.1f}M, {metrics['teacher.accuracy']:.1f}%).", "",
             "| distillation loss | answer accuracy (%) | seeds |", "|---|---|---|"]
    for v in config.variants:
        mean, std, n = (metrics[f"{v.name}.{k}"] for k in ("accuracy.mean", "accuracy.std", "seeds"))
        lines.append(f"| {v.name} | {mean:.1f}" + (f" ± {std:.1f}" if n > 1 else "") + f" | {int(n)} |")
    if config.gaps:
        lines += ["", "| comparison | accuracy difference, per seed (pts) |", "|---|---|"]
        for gap in config.gaps:
            lines.append(f"| {gap.better} − {gap.worse} | {metrics[f'gap.{gap.name}']:+.1f} ± "
                         f"{metrics[f'gap.{gap.name}.std']:.1f} (n={int(metrics[f'gap.{gap.name}.n'])}) |")
    return "\n".join(lines) + "\n"


def plot(config: Config, metrics: dict[str, float], claims, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v.name for v in config.variants]
    means = [metrics[f"{n}.accuracy.mean"] for n in names]
    stds = [metrics[f"{n}.accuracy.std"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar(names, means, yerr=stds, capsize=4, color="tab:blue")
    ax.axhline(metrics["teacher.accuracy"], color="black", linestyle="--", label="teacher")
    s = config.student
    ax.set(ylabel="answer accuracy (%)", title=f"{s.layers}x{s.hidden} student: accuracy per distillation loss")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "accuracy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

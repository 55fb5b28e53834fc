"""One sweep point: the teacher pruned dynamically to ``ratio`` while it is fine-tuned or distilled.

Each variant (mode × importance score × KD settings) runs once per seed. A run:
1. copies the teacher; attaches head gates to the copy's encoder;
2. trains it (``mode: finetune``: task loss; ``mode: kd``: λ1·(KL_T + β·attention alignment) + λ2·task,
   the teacher frozen; the alignment is attention-map MSE over the kept heads of every layer unless
   ``kd.align_loss`` names another loss of ``methods.attention_alignment``); after every
   step the chosen importance score is computed on the current batch and weights, averaged over
   steps (EMA) and the number of masked heads grows linearly until the target at ``schedule.end`` of
   training (``methods.dynamic_pruning``);
3. removes the masked heads for real, checks the removed model equals the masked one on a test
   batch, and evaluates answer accuracy on the test split.
Finished runs are kept (``runs/<variant>-s<seed>.json`` in the checkpoint folder), so a killed stage
resumes at the run it was in, from that run's last training checkpoint.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_serializer

from acbench.config import Strict
from acbench.experiments.mwp.teacher import solver_data
from acbench.experiments.stage_io import checkpoint_dir, sibling_stage, seed_summary
from acbench.safe_io import load_tensors, save_tensors
from acbench.provenance import run_key
from acbench.results import write_metrics
from acbench.items import RECORD_KEY, ItemLog, Outcomes, without_outcomes
from acbench.stage_refs import SiblingStage
from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import collate
from acbench.solver.importance import ImportanceSettings, random_order, scores
from acbench.solver.io import set_threads
from acbench.solver.losses import distill_loss, task_loss
from acbench.solver.metering import LatencySettings, meter, reduction_pct
from acbench.solver.settings import SolverTrainSettings, param_groups
from acbench.training import distributed_context, train
from methods.attention_alignment import AlignLoss, align_params, alignment_loss, qkv_layers
from methods.attention_capture import capture_qkv, layer_probs
from methods.dynamic_pruning import DynamicHeadPruner
from methods.head_gates import HeadGates
from methods.head_importance import attention_entropy
from methods.head_removal import remove_heads

CHECKPOINTS = "runs"
ITEMS = True  # per-item records under items/ (acbench.items)


class KDSettings(Strict):
    lambda_distill: float = Field(1.0, ge=0, description="λ1")
    lambda_task: float = Field(1.0, ge=0, description="λ2")
    temperature: float = Field(2.0, gt=0)
    align_weight: float = Field(1.0, ge=0, description="β: weight of attention alignment inside L_distill; 0 = off")
    align_loss: AlignLoss = Field("attention_mse", description="which alignment (methods.attention_alignment)")
    relation_heads: int = Field(12, ge=1, description="MiniLMv2 relation heads (align_loss: minilmv2)")
    align_params: dict[str, Any] = Field({}, description="parameters of align_loss (its schema in methods/), "
                                                         "e.g. attention_mse: {form: probabilities}")

    def model_post_init(self, __context) -> None:
        align_params(self.align_loss, self.align_params)

    @model_serializer(mode="wrap")
    def _omit_default_alignment(self, handler):
        """Leave the alignment options out while they hold their defaults, so runs recorded before
        the options existed keep their fingerprints (they used exactly these defaults)."""
        data = handler(self)
        for key, default in (("align_loss", "attention_mse"), ("relation_heads", 12), ("align_params", {})):
            if data.get(key) == default:
                data.pop(key)
        return data


class Variant(Strict):
    name: str
    mode: Literal["finetune", "kd"]
    importance: ImportanceSettings = ImportanceSettings()
    kd: KDSettings = KDSettings()
    seeds: list[int] = Field([0], min_length=1)


class ScheduleSettings(Strict):
    start: float = Field(0.0, ge=0, le=1, description="fraction of training steps before the first head is masked")
    end: float = Field(0.5, ge=0, le=1, description="fraction of training steps at which the target is reached")
    ema: float = Field(0.9, ge=0, lt=1)


class Config(Strict):
    teacher_stage: SiblingStage
    ratio: float = Field(ge=0, le=1)
    variants: list[Variant] = Field(min_length=1)
    schedule: ScheduleSettings = ScheduleSettings()
    train: SolverTrainSettings
    eval_batch: int = Field(64, ge=1)
    latency: LatencySettings = LatencySettings()
    max_seeds: int | None = Field(None, ge=1, description="run only each variant's first N seeds (smoke)")
    threads: int | None = Field(None, ge=1)


class _GatedPruner:
    """The pruner as the trainer's resumable state: restoring it also restores the gates' mask."""

    def __init__(self, pruner: DynamicHeadPruner, gates: HeadGates):
        self.pruner, self.gates = pruner, gates

    def state_dict(self) -> dict:
        return self.pruner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.pruner.load_state_dict(state)
        self.gates.set_masked(self.pruner.masked_heads())


def run_one(config: Config, variant: Variant, seed: int, teacher, train_examples, test_examples, folder: Path, ctx):
    """Train one pruned student; returns (its result dict, the pruned model)."""
    student = copy.deepcopy(teacher).train()
    gates = HeadGates(student.encoder, requires_grad=variant.importance.needs_gate_grad)
    layers, heads = gates.values.shape
    settings = config.train.model_copy(update={"seed": seed})
    spe = len(train_examples) // settings.batch_size
    total = max(1, math.ceil(settings.epochs * spe))
    pruner = DynamicHeadPruner(layers, heads, round(config.ratio * layers * heads), int(config.schedule.start * total),
                               max(1, int(config.schedule.end * total)), config.schedule.ema,
                               variant.importance.min_heads_per_layer,
                               random_order(layers, heads, seed) if variant.importance.random_order else None)
    kd = variant.mode == "kd"
    align = kd and variant.kd.align_weight > 0
    layer_map = [(layer, layer) for layer in range(layers)]
    s_qkv_layers, t_qkv_layers = qkv_layers(variant.kd.align_loss, layer_map) if align else ([], [])
    if variant.importance.needs_attentions:  # the entropy reads every layer's maps
        s_qkv_layers = list(range(layers))
    params = align_params(variant.kd.align_loss, variant.kd.align_params)
    step_entropy: dict[str, torch.Tensor] = {}

    def loss_fn(module, batch, step):
        # attention maps (alignment, entropy) are derived from captured Q/K: before attention dropout
        with capture_qkv(student.encoder, s_qkv_layers) as s_qkv:
            out = module(batch)
        task = task_loss(out.logits, batch["labels"])
        if variant.importance.needs_attentions:
            with torch.no_grad():
                step_entropy["value"] = attention_entropy(layer_probs(s_qkv, batch["attention_mask"]),
                                                          batch["attention_mask"])
        if not kd:
            return task, {"task": float(task.detach())}
        with torch.no_grad(), capture_qkv(teacher.encoder, t_qkv_layers) as t_qkv:
            t_out = teacher(batch)
        distill = distill_loss(out.logits, t_out.logits, batch["labels"], variant.kd.temperature)
        logs = {"task": float(task.detach()), "kl": float(distill.detach())}
        if align:
            masked = pruner.masked_heads()
            kept = {layer: [h for h in range(heads) if h not in masked.get(layer, [])] for layer in range(layers)}
            alignment = alignment_loss(variant.kd.align_loss, layer_map, batch["attention_mask"],
                                       student_qkv=s_qkv, teacher_qkv=t_qkv, kept=kept,
                                       relation_heads=variant.kd.relation_heads, params=params)
            distill = distill + variant.kd.align_weight * alignment
            logs["align"] = float(alignment.detach())
        return variant.kd.lambda_distill * distill + variant.kd.lambda_task * task, logs

    def after_backward(step):
        entropy = step_entropy.pop("value", None)
        grad = gates.take_grad() if variant.importance.needs_gate_grad else None
        s = scores(variant.importance, student.encoder, entropy, grad)
        if s is not None:
            pruner.update(ctx.mean(s))
        if pruner.step(step + 1):
            gates.set_masked(pruner.masked_heads())

    teacher.eval()
    torch.manual_seed(seed)
    result = train(student, train_examples, lambda b: collate(b, teacher.vocab), loss_fn, settings,
                   folder / "training", ctx, param_groups=param_groups(student, settings), state=_GatedPruner(pruner, gates),
                   after_backward=after_backward, desc=f"{variant.name} {config.ratio:.0%} s{seed}",
                   run_key=run_key(config, variant.name, seed))
    gates.set_masked(pruner.masked_heads())
    student.eval()
    probe = collate(test_examples[:8], teacher.vocab)
    with torch.no_grad():
        masked_logits = student(probe).logits
        gates.remove()
        remove_heads(student.encoder, pruner.masked_heads())
        diff = float((student(probe).logits - masked_logits).abs().max())
    if diff > 1e-3:
        raise RuntimeError(f"removing the masked heads changed the outputs by {diff:.2e}: removal is not exact")
    outcomes = answer_outcomes(student, test_examples, config.eval_batch, f"{variant.name} s{seed} test")
    return {"accuracy": outcomes.accuracy, RECORD_KEY: outcomes.to_json(), "heads_removed": len(pruner.masked),
            "removed_heads": {str(k): v for k, v in pruner.masked_heads().items()},
            "removed_vs_masked_max_abs_diff": diff, "train_seconds": result.seconds,
            "final_loss": statistics.fmean(result.losses[-10:]),
            "logs_tail": {k: statistics.fmean(v[-10:]) for k, v in result.logs.items()}}, student


def load_student(teacher, path: Path, removed: dict[str, list[int]]):
    """A saved pruned student: the teacher's architecture minus ``removed`` heads, then its weights."""
    model = copy.deepcopy(teacher)
    remove_heads(model.encoder, {int(k): v for k, v in removed.items()})
    model.load_state_dict(load_tensors(path.with_suffix(".safetensors"),
                                       f"delete {path.parent} and re-run this stage"))
    return model.eval()


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    ctx = distributed_context()
    started = time.perf_counter()
    teacher, data, train_examples, test_examples = solver_data(sibling_stage(out_dir, config.teacher_stage))
    root = checkpoint_dir(out_dir)
    metrics: dict[str, float] = {}
    runs: dict[str, dict] = {}
    items = ItemLog()
    for variant in config.variants:
        accuracies = []
        for seed in variant.seeds[:config.max_seeds]:
            name = f"{variant.name}-s{seed}"
            record = root / "runs" / f"{name}.json"
            tag = run_key(config, variant.name, seed)
            done = json.loads(record.read_text()) if record.is_file() else None
            if done is None or done.get("run_key") != tag or RECORD_KEY not in done:
                done, model = run_one(config, variant, seed, teacher, train_examples, test_examples, root / name, ctx)
                done["run_key"] = tag
                if ctx.is_main:
                    record.parent.mkdir(parents=True, exist_ok=True)
                    if seed == variant.seeds[0]:  # keep one pruned student per variant
                        save_tensors(model.state_dict(), record.with_suffix(".safetensors"))
                    record.write_text(json.dumps(done, indent=1))
                shutil.rmtree(root / name, ignore_errors=True)
            items.add_outcomes(f"{variant.name}@s{seed}", Outcomes.from_json(done[RECORD_KEY]))
            runs[name] = without_outcomes(done)
            accuracies.append(done["accuracy"])
            metrics[f"{variant.name}.accuracy@s{seed}"] = done["accuracy"]
        metrics.update(seed_summary(variant.name, accuracies))
        metrics[f"{variant.name}.heads_removed"] = runs[f"{variant.name}-s{variant.seeds[0]}"]["heads_removed"]
    first = config.variants[0]
    metered_model = load_student(teacher, root / "runs" / f"{first.name}-s{first.seeds[0]}",
                                 runs[f"{first.name}-s{first.seeds[0]}"]["removed_heads"])
    if ctx.is_main:
        metered = meter({"teacher": teacher, "student": metered_model}, "teacher", test_examples, config.latency)
        for key, value in metered["student"].items():
            metrics[key] = value
        for key in ("params.whole_model", "params.encoder", "flops.encoder"):
            metrics[f"{key}_reduction_pct"] = reduction_pct(metered["teacher"][key], metered["student"][key])
        metrics["stage_seconds"] = time.perf_counter() - started
        exact = [k for k in metrics if k.endswith(("heads_removed", ".seeds"))]
        write_metrics(out_dir, metrics, exact, {"runs": runs}, items.write(out_dir))
    ctx.barrier()
    return metrics

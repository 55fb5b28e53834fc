"""One sweep point: the teacher pruned to ``ratio`` and recovered by fine-tuning or distillation.

Each variant (mode × importance score × KD settings, optionally its own ``ratio``: the ratio-0
control) runs once per seed. A run:
1. copies the teacher; attaches head gates to the copy's encoder;
2. chooses the heads by one of two readings of the paper's "dynamic" pruning (``reading``):
   ``one_shot``: the importance score is computed once on training batches of the teacher and the
   lowest heads are masked before the first step; ``progressive``: after every step the score is
   recomputed on the current batch and weights, averaged over steps (EMA), and the number of
   masked heads grows linearly until the target at ``schedule.end`` of the maximum training steps
   (``methods.dynamic_pruning``);
3. trains it (``mode: finetune``: task loss; ``mode: kd``: λ1·(KL_T + β·attention alignment) + λ2·task,
   the teacher frozen, its outputs cached once per example unless ``kd_cache`` is off). With
   ``train.plateau`` the run is scored on the teacher's validation split (carved from the training
   fold) after every epoch, an evaluation counts only once every head due is masked, training stops
   at the validation plateau and the best weights are kept: the test split never chooses anything;
4. removes the masked heads for real, checks the removed model equals the masked one on a test
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
from acbench.experiments.mwp.teacher import solver_splits
from acbench.experiments.stage_io import checkpoint_dir, sibling_stage, seed_summary
from acbench.safe_io import load_tensors, save_tensors
from acbench.provenance import run_key
from acbench.results import write_metrics
from acbench.items import RECORD_KEY, ItemLog, Outcomes, without_outcomes
from acbench.stage_refs import SiblingStage
from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import collate
from acbench.solver.importance import ImportanceSettings, random_order, scores, static_scores
from acbench.solver.io import set_threads
from acbench.solver.losses import distill_loss, task_loss
from acbench.solver.metering import LatencySettings, meter, reduction_pct
from acbench.solver.settings import SolverTrainSettings, param_groups
from acbench.solver.teacher_cache import TeacherCache, cache_bytes
from acbench.training import distributed_context, train
from methods.attention_alignment import AlignLoss, align_params, alignment_loss, qkv_layers
from methods.attention_capture import capture_qkv, layer_probs
from methods.dynamic_pruning import DynamicHeadPruner
from methods.head_gates import HeadGates
from methods.head_importance import attention_entropy
from methods.head_removal import remove_heads

from .loss_shares import loss_shares
from .prune_only import choose_heads

CHECKPOINTS = "runs"
ITEMS = True  # per-item records under items/ (acbench.items)
INELIGIBLE = -1.0  # validation score of an evaluation taken before every head due was masked


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
    ratio: float | None = Field(None, ge=0, le=1, description="this variant's share of heads pruned (default: the "
                                "stage's ratio); 0 = the no-harm control: the same recovery, no head masked")


class ScheduleSettings(Strict):
    start: float = Field(0.0, ge=0, le=1, description="fraction of the maximum training steps before the first "
                         "head is masked (reading: progressive)")
    end: float = Field(0.5, ge=0, le=1, description="fraction of the maximum training steps at which the target "
                       "is reached (reading: progressive)")
    ema: float = Field(0.9, ge=0, lt=1)


class Config(Strict):
    teacher_stage: SiblingStage
    ratio: float = Field(ge=0, le=1)
    variants: list[Variant] = Field(min_length=1)
    reading: Literal["progressive", "one_shot"] = Field(
        "progressive", description="'dynamic' pruning read as: progressive (scores averaged during recovery, heads "
        "masked step by step until schedule.end) or one_shot (score the teacher once, mask, then recover)")
    schedule: ScheduleSettings = ScheduleSettings()
    score_batches: int = Field(8, ge=1, description="one_shot: training batches the teacher's score is averaged over")
    score_batch_size: int = Field(16, ge=1)
    train: SolverTrainSettings
    valid_limit: int | None = Field(None, ge=1, description="select on the first N validation problems only "
                                    "(a cheaper plateau check on a large validation split)")
    kd_cache: bool = Field(True, description="KD: compute the teacher's outputs once per training example "
                           "(it is frozen, in eval mode, inputs not augmented) instead of once per step")
    kd_cache_max_mb: int = Field(2048, ge=1, description="above this estimated size the teacher runs every step")
    eval_batch: int = Field(64, ge=1)
    latency: LatencySettings = LatencySettings()
    max_seeds: int | None = Field(None, ge=1, description="run only each variant's first N seeds (smoke)")
    threads: int | None = Field(None, ge=1)

    def ratio_of(self, variant: Variant) -> float:
        return self.ratio if variant.ratio is None else variant.ratio


class _GatedPruner:
    """The pruner as the trainer's resumable state: restoring it also restores the gates' mask."""

    def __init__(self, pruner: DynamicHeadPruner, gates: HeadGates):
        self.pruner, self.gates = pruner, gates

    def state_dict(self) -> dict:
        return self.pruner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.pruner.load_state_dict(state)
        self.gates.set_masked(self.pruner.masked_heads())


def make_pruner(config: Config, variant: Variant, seed: int, teacher, train_examples, total: int,
                layers: int, heads: int) -> DynamicHeadPruner:
    """The pruner of one run: ``one_shot`` masks at step 0 the heads the teacher's score picks once;
    ``progressive`` grows the mask from step ``schedule.start`` to ``schedule.end`` of ``total``."""
    target = round(config.ratio_of(variant) * layers * heads)
    order = random_order(layers, heads, seed) if variant.importance.random_order else None
    if config.reading == "progressive":
        return DynamicHeadPruner(layers, heads, target, int(config.schedule.start * total),
                                 max(1, int(config.schedule.end * total)), config.schedule.ema,
                                 variant.importance.min_heads_per_layer, order)
    size = config.score_batch_size
    batches = [collate(train_examples[i * size:(i + 1) * size], teacher.vocab) for i in range(config.score_batches)
               if train_examples[i * size:(i + 1) * size]]
    once = static_scores(variant.importance, copy.deepcopy(teacher), batches)
    plan = choose_heads(once, order, target, variant.importance.min_heads_per_layer)
    chosen = [(layer, head) for layer, hs in sorted(plan.items()) for head in hs]
    pruner = DynamicHeadPruner(layers, heads, target, 0, 0, config.schedule.ema,
                               variant.importance.min_heads_per_layer, chosen)
    pruner.step(0)
    return pruner


def _cache_keys(variant: Variant) -> tuple[str, ...]:
    return ("q", "k") if variant.kd.align_loss == "attention_mse" else ("q", "k", "v")


def cacheable(variant: Variant) -> bool:
    """Whether the loss depends on the teacher only through per-example quantities. Not so for TinyBERT's
    score-form attention MSE (``attention_mse``, ``form: scores``): it counts the *padded* query rows, whose
    teacher scores depend on how far the batch pads the example, so that form keeps the per-step teacher."""
    align = variant.kd.align_weight > 0
    return not (align and variant.kd.align_loss == "attention_mse"
                and align_params(variant.kd.align_loss, variant.kd.align_params).form == "scores")


def teacher_cache(config: Config, variant: Variant, teacher, train_examples, layers: list[int]) -> TeacherCache | None:
    """The cached teacher outputs of a KD run, or None (cache off, a loss that reads padding (see
    :func:`cacheable`), or larger than ``kd_cache_max_mb``)."""
    if not config.kd_cache or not cacheable(variant):
        return None
    widths = {layer: teacher.encoder.config.hidden_size for layer in layers}
    need = cache_bytes(train_examples, teacher.vocab.size, widths, _cache_keys(variant))
    if need > config.kd_cache_max_mb * 2 ** 20:
        return None
    return TeacherCache.build(teacher, train_examples, teacher.vocab, layers, _cache_keys(variant), config.eval_batch)


def run_one(config: Config, variant: Variant, seed: int, teacher, train_examples, valid_examples, test_examples,
            folder: Path, ctx):
    """Train one pruned student; returns (its result dict, the pruned model)."""
    student = copy.deepcopy(teacher).train()
    gates = HeadGates(student.encoder, requires_grad=variant.importance.needs_gate_grad)
    layers, heads = gates.values.shape
    settings = config.train.model_copy(update={"seed": seed})
    spe = len(train_examples) // settings.batch_size
    total = max(1, math.ceil(settings.epochs * spe))
    pruner = make_pruner(config, variant, seed, teacher, train_examples, total, layers, heads)
    gates.set_masked(pruner.masked_heads())
    progressive = config.reading == "progressive" and pruner.target > 0
    kd = variant.mode == "kd"
    align = kd and variant.kd.align_weight > 0
    layer_map = [(layer, layer) for layer in range(layers)]
    align_s_layers, t_qkv_layers = qkv_layers(variant.kd.align_loss, layer_map) if align else ([], [])
    params = align_params(variant.kd.align_loss, variant.kd.align_params)
    step_entropy: dict[str, torch.Tensor] = {}
    teacher.eval()
    cache = teacher_cache(config, variant, teacher, train_examples, t_qkv_layers) if kd else None

    def scoring() -> bool:  # progressive reading, while heads are still to be masked
        return progressive and len(pruner.masked) < pruner.target

    def loss_fn(module, batch, step):
        entropy = variant.importance.needs_attentions and scoring()
        s_layers = list(range(layers)) if entropy else align_s_layers  # the entropy reads every layer's maps
        # attention maps (alignment, entropy) are derived from captured Q/K: before attention dropout
        with capture_qkv(student.encoder, s_layers) as s_qkv:
            out = module(batch)
        task = task_loss(out.logits, batch["labels"])
        if entropy:
            with torch.no_grad():
                step_entropy["value"] = attention_entropy(layer_probs(s_qkv, batch["attention_mask"]),
                                                          batch["attention_mask"])
        if not kd:
            return task, {"task": float(task.detach())}
        if cache is not None:
            t_logits, t_qkv = cache.batch(batch["examples"], batch)
        else:
            with torch.no_grad(), capture_qkv(teacher.encoder, t_qkv_layers) as t_qkv:
                t_logits = teacher(batch).logits
        distill = distill_loss(out.logits, t_logits, batch["labels"], variant.kd.temperature)
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
        if not scoring():
            if variant.importance.needs_gate_grad:
                gates.take_grad()  # cleared, not used: the mask is final
            return
        entropy = step_entropy.pop("value", None)
        grad = gates.take_grad() if variant.importance.needs_gate_grad else None
        s = scores(variant.importance, student.encoder, entropy, grad)
        if s is not None:
            pruner.update(ctx.mean(s))
        if pruner.step(step + 1):
            gates.set_masked(pruner.masked_heads())

    def validate(module) -> float:
        if len(pruner.masked) < pruner.target:
            return INELIGIBLE  # the final architecture does not exist yet: never the model kept
        return answer_outcomes(module, valid_examples, config.eval_batch, f"{variant.name} s{seed} valid").accuracy

    def collate_fn(examples):
        batch = collate(examples, teacher.vocab)
        batch["examples"] = examples  # the cache's key; the solver reads only its tensors
        return batch

    torch.manual_seed(seed)
    result = train(student, train_examples, collate_fn, loss_fn, settings,
                   folder / "training", ctx, param_groups=param_groups(student, settings), state=_GatedPruner(pruner, gates),
                   after_backward=after_backward, desc=f"{variant.name} {config.ratio_of(variant):.0%} s{seed}",
                   run_key=run_key(config, variant.name, seed), validate=validate if settings.plateau else None,
                   lengths=[len(e.input_ids) for e in train_examples])
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
    record = {"accuracy": outcomes.accuracy, RECORD_KEY: outcomes.to_json(), "heads_removed": len(pruner.masked),
              "removed_heads": {str(k): v for k, v in pruner.masked_heads().items()},
              "removed_vs_masked_max_abs_diff": diff, "train_seconds": result.seconds,
              "steps": result.steps, "final_loss": statistics.fmean(result.losses[-10:]),
              "kd_cache": float(cache is not None) if kd else None,
              "logs_tail": {k: statistics.fmean(v[-10:]) for k, v in result.logs.items()},
              "loss_share": loss_shares(result.logs, variant.kd) if kd else None}
    if settings.plateau is not None:
        record.update({"valid_curve": {"steps": result.valid_steps, "accuracy": result.valid_scores},
                       "best_step": result.best_step, "best_epoch": result.best_step / spe,
                       "epochs_trained": result.steps / spe, "plateau_reached": float(result.plateau_reached),
                       "valid_accuracy": result.best_score})
    return record, student


def load_student(teacher, path: Path, removed: dict[str, list[int]]):
    """A saved pruned student: the teacher's architecture minus ``removed`` heads, then its weights."""
    model = copy.deepcopy(teacher)
    remove_heads(model.encoder, {int(k): v for k, v in removed.items()})
    model.load_state_dict(load_tensors(path.with_suffix(".safetensors"),
                                       f"delete {path.parent} and re-run this stage"))
    return model.eval()


def run_summary(name: str, records: list[dict]) -> dict[str, float]:
    """Means over a variant's seeds of its loss shares (KD), training length and validation score."""
    out: dict[str, float] = {}
    shares = [r["loss_share"] for r in records if r.get("loss_share")]
    for term in (shares[0] if shares else {}):
        out[f"{name}.loss_share.{term}"] = statistics.fmean(s[term] for s in shares)
    for key in ("epochs_trained", "best_epoch", "valid_accuracy", "steps"):
        values = [r[key] for r in records if r.get(key) is not None]
        if values:
            out[f"{name}.{key}"] = statistics.fmean(values)
    return out


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    ctx = distributed_context()
    started = time.perf_counter()
    teacher, _, train_examples, valid_examples, test_examples = solver_splits(sibling_stage(out_dir, config.teacher_stage))
    if config.train.plateau is not None and not valid_examples:
        raise ValueError(f"train.plateau selects on a validation split, and teacher stage {config.teacher_stage!r} "
                         "has none: set its data.valid_fraction or data.valid_split")
    valid_examples = valid_examples[:config.valid_limit]
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
                done, model = run_one(config, variant, seed, teacher, train_examples, valid_examples, test_examples,
                                      root / name, ctx)
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
        metrics.update(run_summary(variant.name, [runs[f"{variant.name}-s{seed}"] for seed in variant.seeds[:config.max_seeds]]))
        metrics[f"{variant.name}.heads_removed"] = runs[f"{variant.name}-s{variant.seeds[0]}"]["heads_removed"]
    first = next((v for v in config.variants if config.ratio_of(v) == config.ratio), config.variants[0])
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

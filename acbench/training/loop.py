"""The training loop: seeded data order, AdamW + linear warm-up/decay, DDP, checkpoints, resume, NaN stop.

The caller supplies the examples, a ``collate`` function and a ``loss_fn(module, batch, step) ->
(loss, logs)``; the loop owns everything else. Guarantees:

- **Same result in one process or many.** Every global batch is the same set of examples
  whatever the world size (a seeded permutation per epoch, split into equal contiguous shards);
  DDP averages the shards' gradients, so a loss that is a mean over *examples* gives the same
  update as one process with the whole batch.
- **Resume after a kill.** A checkpoint (model, optimizer, scheduler, torch RNG, loss history and
  the caller's ``state`` object) is written every ``checkpoint_every`` steps and at the end; a new
  run with the same ``checkpoint_dir`` continues from the last one and ends with the same weights
  as an uninterrupted run (the data order depends only on seed and epoch).
- **Model selection on validation only.** With ``plateau`` settings and a ``validate(model) ->
  score`` callback (higher is better, computed on a validation split, never the test set), the loop
  scores the model every ``plateau.every_epochs`` epochs, keeps the best weights (a checkpoint of
  its own, so a resume keeps them), stops once ``plateau.patience`` evaluations in a row have not
  improved on the best by more than ``plateau.min_delta`` (not before ``plateau.min_epochs``), and
  ends with the best weights loaded. ``epochs`` is then the maximum; the LR schedule decays over it.
  ``TrainResult.plateau_reached`` says whether the stop was the plateau (converged) or the maximum.
- **Length-bucketed batches** (``length_buckets: k``, with ``lengths`` given): each epoch's seeded
  permutation is cut into pools of ``k`` batches, each pool sorted by length and cut into batches,
  and the batches of the epoch shuffled again; padding shrinks, every example is still seen once per
  epoch, and the order still depends only on seed and epoch.
- **Divergence stop.** A non-finite loss raises :class:`TrainingDiverged` before the optimizer
  step; a checkpoint is only written while every weight is finite (else the same stop), so the one
  kept is the last whose weights and loss were finite. The message names its step and the likely
  fix (lower ``lr``, set ``max_grad_norm``); a re-run with changed settings has a new run key
  and starts from scratch, a re-run with the same settings stops again at once instead of
  retraining into the same divergence.

The environment variable ``ACBENCH_KILL_AFTER_STEP=<n>`` makes the process SIGKILL itself right
after step n: the resume test uses it to crash a run at a known point.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch
from pydantic import Field
from torch import nn
from tqdm.auto import tqdm

from acbench.config import Strict
from acbench.errors import AcbenchError
from acbench.training.checkpoint import (CheckpointError, latest_checkpoint, load_checkpoint, read_state,
                                         save_checkpoint)
from acbench.training.distributed import DistContext

KILL_ENV = "ACBENCH_KILL_AFTER_STEP"
DIVERGED = "diverged.json"


class PlateauSettings(Strict):
    """When training stops on a validation score (higher is better)."""

    patience: int = Field(3, ge=1, description="evaluations in a row without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="an improvement must exceed the best by more than this")
    every_epochs: float = Field(1.0, gt=0, description="epochs between evaluations")
    min_epochs: float = Field(0.0, ge=0, description="never stop before this many epochs")


class TrainSettings(Strict):
    epochs: float = Field(gt=0, description="passes over the training examples (fractions allowed)")
    batch_size: int = Field(ge=1, description="global batch size (all processes together)")
    lr: float = Field(gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints")
    seed: int = 0
    plateau: PlateauSettings | None = Field(None, description="stop at the validation plateau (needs a "
                                            "validate callback); epochs is then the maximum")
    length_buckets: int | None = Field(None, ge=2, description="pool this many batches, sort each pool by "
                                       "length (needs lengths); None: plain shuffled batches")


class TrainingDiverged(AcbenchError, RuntimeError):
    """The loss or the weights became non-finite; the message names the step and the kept checkpoint."""


class StepState(Protocol):
    """Caller state that must survive a resume (e.g. a dynamic pruner)."""

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


@dataclass
class TrainResult:
    steps: int
    losses: list[float]
    seconds: float
    resumed_from: int | None = None
    logs: dict[str, list[float]] = field(default_factory=dict)
    valid_steps: list[int] = field(default_factory=list)  # steps at which the validation score was taken
    valid_scores: list[float] = field(default_factory=list)
    best_step: int | None = None  # the step whose weights the model holds at the end (plateau runs)
    plateau_reached: bool | None = None  # None: no plateau settings; False: stopped at the maximum epochs

    @property
    def best_score(self) -> float | None:
        return None if self.best_step is None else self.valid_scores[self.valid_steps.index(self.best_step)]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    if num_examples < batch_size:
        raise ValueError(f"{num_examples} training examples cannot fill one batch of {batch_size}")
    return num_examples // batch_size


def epoch_batches(num_examples: int, settings: TrainSettings, epoch: int,
                  lengths: Sequence[int] | None = None) -> list[list[int]]:
    """The global batches of ``epoch``: a seeded permutation cut into batches (the remainder is
    dropped), or, with ``settings.length_buckets``, pools of that many batches sorted by length."""
    spe = steps_per_epoch(num_examples, settings.batch_size)
    size = settings.batch_size
    generator = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
    order = torch.randperm(num_examples, generator=generator).tolist()
    if settings.length_buckets is None:
        return [order[i * size:(i + 1) * size] for i in range(spe)]
    if lengths is None or len(lengths) != num_examples:
        raise ValueError("length_buckets needs the length of every training example")
    order = order[:spe * size]
    pool = settings.length_buckets * size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: (lengths[i], i))
        batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def batch_indices(num_examples: int, settings: TrainSettings, step: int, ctx: DistContext,
                  lengths: Sequence[int] | None = None) -> list[int]:
    """This process's example indices for global ``step`` (0-based)."""
    spe = steps_per_epoch(num_examples, settings.batch_size)
    epoch, within = divmod(step, spe)
    chosen = epoch_batches(num_examples, settings, epoch, lengths)[within]
    share = settings.batch_size // ctx.world_size
    return chosen[ctx.rank * share:(ctx.rank + 1) * share]


def evaluation_steps(total: int, spe: int, plateau: PlateauSettings) -> list[int]:
    """The steps (counted from 1) after which a plateau run scores the model; the last is ``total``."""
    every = max(1, round(plateau.every_epochs * spe))
    return sorted(set(range(every, total + 1, every)) | {total})


def plateau_stop(scores: Sequence[float], steps: Sequence[int], spe: int, plateau: PlateauSettings) -> bool:
    """Whether none of the last ``patience`` evaluations improved on the best kept (``best_index``)."""
    if not scores or steps[-1] < plateau.min_epochs * spe:
        return False
    return best_index(scores, plateau.min_delta) <= len(scores) - 1 - plateau.patience


def best_index(scores: Sequence[float], min_delta: float) -> int:
    """The evaluation kept: a later score replaces the kept one only when it is higher by more than
    ``min_delta`` (so with ``min_delta`` 0, the first of equal best scores)."""
    best = 0
    for i, score in enumerate(scores):
        if score > scores[best] + min_delta:
            best = i
    return best


def _linear_schedule(total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def _read_diverged(checkpoint_dir: Path) -> dict | None:
    path = checkpoint_dir / DIVERGED
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        return None


def _prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v for k, v in tensors.items()}


def train(model: nn.Module, examples: Sequence[Any], collate: Callable[[list[Any]], Any],
          loss_fn: Callable[[nn.Module, Any, int], tuple[torch.Tensor, dict[str, float]]],
          settings: TrainSettings, checkpoint_dir: Path, ctx: DistContext = DistContext(), *,
          param_groups: list[dict] | None = None, state: StepState | None = None,
          after_backward: Callable[[int], None] | None = None, desc: str = "train",
          run_key: str = "", validate: Callable[[nn.Module], float] | None = None,
          lengths: Sequence[int] | None = None) -> TrainResult:
    """Train ``model`` in place; see the module docstring. ``param_groups`` (AdamW groups; default:
    all parameters at ``settings.lr``); ``after_backward(step)`` runs after gradients exist, before
    clipping and the optimizer step (e.g. to read head-gate gradients). ``run_key`` identifies
    the run (``acbench.provenance.run_key``: config, upstream artefacts, data, code, libraries): checkpoints
    of a different key are discarded, so a changed input never resumes from a stale run.
    ``validate(model) -> score`` (higher is better; on a validation split) is called at the plateau
    evaluation steps; ``lengths`` (one per example) orders length-bucketed batches."""
    if settings.batch_size % ctx.world_size:
        raise ValueError(f"batch size {settings.batch_size} is not divisible by the {ctx.world_size} processes")
    if settings.plateau is not None and validate is None:
        raise ValueError("plateau settings need a validate callback (a score on a validation split)")
    spe = steps_per_epoch(len(examples), settings.batch_size)
    total = max(1, math.ceil(settings.epochs * spe))
    evals = set(evaluation_steps(total, spe, settings.plateau)) if settings.plateau is not None else set()
    best_root = Path(checkpoint_dir) / "best"
    valid_steps: list[int] = []
    valid_scores: list[float] = []
    optimizer = torch.optim.AdamW(param_groups or model.parameters(), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _linear_schedule(total, int(settings.warmup_ratio * total)))
    module = model
    if ctx.active:
        module = nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)

    start, losses, logs, resumed = 0, [], {}, None
    checkpoint_dir = Path(checkpoint_dir)
    diverged = _read_diverged(checkpoint_dir)
    found = latest_checkpoint(checkpoint_dir)
    stale = found is not None and read_state(found)["meta"].get("run_key") != run_key
    if stale or (diverged is not None and diverged.get("run_key") != run_key):
        if ctx.is_main:
            tqdm.write(f"{desc}: discarding checkpoints of a different configuration in {checkpoint_dir}")
        ctx.barrier()
        if ctx.is_main:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        ctx.barrier()
        found, diverged = None, None
    if diverged is not None:  # same settings as a run that diverged: it would diverge again
        raise TrainingDiverged(diverged["message"] + " (this configuration diverged before; change it)",
                               diverged["hint"])
    if found is not None:
        saved, extra = load_checkpoint(found, model, optimizer, scheduler)
        start = resumed = saved["step"]
        losses = extra["history.loss"].tolist()
        if "history.valid_steps" in extra:
            valid_steps = [int(v) for v in extra["history.valid_steps"].tolist()]
            valid_scores = extra["history.valid_scores"].tolist()
        logs = {k[len("log."):]: v.tolist() for k, v in extra.items() if k.startswith("log.")}
        torch.set_rng_state(extra["rng.torch"])
        if state is not None:
            state.load_state_dict({k[len("state."):]: v for k, v in extra.items() if k.startswith("state.")})

    def stop(reason: str, step: int) -> None:
        bar.close()
        last = latest_checkpoint(checkpoint_dir)
        kept = (f"kept the last checkpoint with finite weights and loss, step {read_state(last)['step']} "
                f"({last})" if last else "no checkpoint had been written yet")
        message = f"{desc}: training diverged: {reason} at step {step} of {total} (epoch {(step - 1) // spe + 1}); {kept}"
        clip = ("lower max_grad_norm" if settings.max_grad_norm is not None else "set max_grad_norm (e.g. 1.0)")
        hint = (f"lower the learning rate (lr is {settings.lr:g}) or {clip} in the stage's train settings; "
                "a re-run with changed settings starts from scratch")
        if ctx.is_main:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            (checkpoint_dir / DIVERGED).write_text(json.dumps({"run_key": run_key, "step": step,
                                                                "message": message, "hint": hint}))
        raise TrainingDiverged(message, hint)

    def checkpoint(step: int) -> None:
        bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            stop(f"weights became non-finite ({', '.join(bad[:3])}{', …' if len(bad) > 3 else ''})", step)
        if ctx.is_main:
            extra = {"history.loss": torch.tensor(losses, dtype=torch.float64), "rng.torch": torch.get_rng_state()}
            if evals:
                extra["history.valid_steps"] = torch.tensor(valid_steps, dtype=torch.int64)
                extra["history.valid_scores"] = torch.tensor(valid_scores, dtype=torch.float64)
            extra.update({f"log.{k}": torch.tensor(v, dtype=torch.float64) for k, v in logs.items()})
            if state is not None:
                extra.update(_prefixed("state.", state.state_dict()))
            save_checkpoint(checkpoint_dir, step, model, optimizer, scheduler, extra, {"run_key": run_key})
        ctx.barrier()

    kill_after = int(os.environ.get(KILL_ENV, "-1"))
    began = time.perf_counter()
    model.train()
    stopped = bool(evals) and plateau_stop(valid_scores, valid_steps, spe, settings.plateau)
    bar = tqdm(total=total, initial=start, desc=desc, disable=not ctx.is_main, mininterval=5, dynamic_ncols=True)
    for step in range(start, total if not stopped else start):
        batch = collate([examples[i] for i in batch_indices(len(examples), settings, step, ctx, lengths)])
        loss, step_logs = loss_fn(module, batch, step)
        loss_value = float(ctx.mean(loss.detach()))
        if not math.isfinite(loss_value):
            stop(f"loss is {loss_value} (stopped before the update)", step + 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if after_backward is not None:
            after_backward(step)
        if settings.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(loss_value)
        for key, value in step_logs.items():
            logs.setdefault(key, []).append(float(value))
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
        done = step + 1
        if done in evals:
            valid_steps.append(done)
            valid_scores.append(float(validate(model)))
            model.train()
            bar.set_postfix(loss=f"{loss_value:.4f}", valid=f"{valid_scores[-1]:.2f}", refresh=False)
            if best_index(valid_scores, settings.plateau.min_delta) == len(valid_scores) - 1:
                if ctx.is_main:
                    save_checkpoint(best_root, done, model, meta={"run_key": run_key, "score": valid_scores[-1]})
                ctx.barrier()
            checkpoint(done)
            stopped = plateau_stop(valid_scores, valid_steps, spe, settings.plateau)
        elif done % settings.checkpoint_every == 0 or done == total:
            checkpoint(done)
        if done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if stopped:
            break
    bar.close()
    best_step, reached = None, None
    if evals:
        best_step = valid_steps[best_index(valid_scores, settings.plateau.min_delta)]
        kept = latest_checkpoint(best_root)
        saved = read_state(kept) if kept is not None else None
        if saved is None or saved["step"] != best_step or saved["meta"].get("run_key") != run_key:
            raise CheckpointError(f"{best_root}: the best-on-validation weights (step {best_step}) are missing",
                                  f"delete {checkpoint_dir} to train again")
        load_checkpoint(kept, model)
        reached = stopped
    model.eval()
    return TrainResult(len(losses), losses, time.perf_counter() - began, resumed, logs, valid_steps, valid_scores,
                       best_step, reached)

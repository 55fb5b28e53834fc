"""Train the math word-problem solver that is later pruned and distilled (the teacher).

Writes the trained solver (safetensors + solver.json) to the stage's checkpoint folder and
``metrics.json`` with the test accuracy, the data used and the training time. With ``train.plateau``
the teacher trains to the plateau of its answer accuracy on the validation split (``data.valid_*``)
and keeps the best weights on it; the test split is only scored, never used to choose.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import NamedTuple

import torch
from pydantic import Field

from acbench.config import Strict
from acbench.experiments.stage_io import checkpoint_dir
from acbench.mwp.numbers import derive_constants, find_numbers
from acbench.provenance import run_key
from acbench.results import write_metrics
from acbench.solver.data import DataSettings, encode_all, load_problems, load_train_valid, trainable
from acbench.solver.encoders import EncoderSpec
from acbench.items import ItemLog
from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import OutputVocab, collate
from acbench.solver.io import build_solver, load_solver, save_solver, set_threads
from acbench.solver.losses import task_loss
from acbench.solver.settings import DecoderSettings, SolverTrainSettings, param_groups
from acbench.solver.tokenizers import CharTokenizer, WordPieceTokenizer
from acbench.training import distributed_context, train

CHECKPOINTS = "model"  # the trained solver, read by the pruning and student stages
ITEMS = True  # per-item records under items/ (acbench.items)


class Config(Strict):
    data: DataSettings
    encoder: EncoderSpec
    decoder: DecoderSettings = DecoderSettings()
    train: SolverTrainSettings
    char_min_count: int = Field(2, ge=1, description="scratch encoders: keep characters seen this often")
    eval_batch: int = Field(64, ge=1)
    threads: int | None = Field(None, ge=1)

    def model_post_init(self, __context) -> None:
        if self.train.plateau is not None and not self.data.has_validation:
            raise ValueError("train.plateau selects on a validation split: set data.valid_split or data.valid_fraction")


def make_tokenizer(config: Config, problems, other_texts: list[str] = ()):
    """The input tokenizer: a pretrained encoder's own; e5's, its vocabulary trimmed to the pieces of the
    training problems and ``other_texts`` (the validation and test texts: keeping their rows is using the
    pretrained model as it is, no label is read); a character vocabulary of the training problems."""
    if config.encoder.kind == "pretrained":
        return WordPieceTokenizer(config.encoder.source)
    if config.encoder.kind == "e5":
        from acbench.solver.e5_vocab import DEFAULT_PREFIX, E5Tokenizer, kept_ids
        from acbench.solver.e5_weights import load_tokenizer

        tok = load_tokenizer()
        return E5Tokenizer(tok, kept_ids(tok, [p.text for p in problems] + list(other_texts)), DEFAULT_PREFIX)
    words = config.data.number_words
    return CharTokenizer.build(((p.text, find_numbers(p.text, words=words)) for p in problems), config.char_min_count)


def run(config: Config, out_dir: Path) -> dict[str, float]:
    set_threads(config.threads)
    ctx = distributed_context()
    started = time.perf_counter()
    train_problems, valid_problems = load_train_valid(config.data)
    test_problems = load_problems(config.data, config.data.test_split, config.data.test_limit)
    constants = [c for c, _ in derive_constants(((p.text, p.equation) for p in train_problems),
                                                config.data.constants_min_count, words=config.data.number_words)]
    tokenizer = make_tokenizer(config, train_problems, [p.text for p in valid_problems + test_problems])
    meta = {"data": config.data.model_dump(mode="json"), "constants": constants, "max_slots": config.data.max_slots,
            "encoder": config.encoder.model_dump(mode="json"), "decoder": config.decoder.model_dump(mode="json"),
            "tokenizer": tokenizer.to_json()}
    vocab = OutputVocab(tuple(constants), config.data.max_slots)
    train_examples = trainable(encode_all(train_problems, tokenizer, vocab, config.data), config.decoder.max_steps)
    test_examples = encode_all(test_problems, tokenizer, vocab, config.data)
    valid_examples = encode_all(valid_problems, tokenizer, vocab, config.data)
    torch.manual_seed(config.train.seed)
    model = build_solver(meta, tokenizer)

    def loss_fn(module, batch, step):
        loss = task_loss(module(batch).logits, batch["labels"])
        return loss, {}

    def validate(module) -> float:
        return answer_outcomes(module, valid_examples, config.eval_batch, "teacher valid").accuracy

    folder = checkpoint_dir(out_dir)
    result = train(model, train_examples, lambda b: collate(b, vocab), loss_fn, config.train, folder / "training", ctx,
                   param_groups=param_groups(model, config.train), desc=f"teacher {config.data.name}",
                   run_key=run_key(config), validate=validate if config.train.plateau else None,
                   lengths=[len(e.input_ids) for e in train_examples])
    metrics: dict[str, float] = {}
    if ctx.is_main:
        save_solver(folder / "solver", model, meta)
        items = ItemLog()
        test = answer_outcomes(model, test_examples, config.eval_batch, "teacher test")
        train_subset = answer_outcomes(model, train_examples[:len(test_examples)], config.eval_batch, "teacher train")
        items.add_outcomes("test", test)
        items.add_outcomes("train_subset", train_subset)
        plateau = {}
        if valid_examples:
            valid = answer_outcomes(model, valid_examples, config.eval_batch, "teacher valid")
            items.add_outcomes("valid", valid)
            plateau["valid_accuracy"] = valid.accuracy
            plateau["valid_problems"] = len(valid_examples)
        if result.plateau_reached is not None:
            spe = len(train_examples) // config.train.batch_size
            plateau.update({"best_epoch": result.best_step / spe, "epochs_trained": result.steps / spe,
                            "plateau_reached": float(result.plateau_reached)})
        metrics = {**plateau, "accuracy": test.accuracy, "train_subset_accuracy": train_subset.accuracy,
                   "train_problems": len(train_problems), "train_examples": len(train_examples),
                   "test_problems": len(test_examples), "constants": len(constants),
                   "input_vocab": tokenizer.vocab_size, "steps": result.steps,
                   "final_loss": sum(result.losses[-10:]) / len(result.losses[-10:]),
                   "train_seconds": result.seconds, "stage_seconds": time.perf_counter() - started,
                   "world_size": ctx.world_size}
        write_metrics(out_dir, metrics, ["train_problems", "train_examples", "test_problems", "constants", "steps"],
                      {"loss_curve": result.losses, "resumed_from": result.resumed_from,
                       "valid_curve": {"steps": result.valid_steps, "accuracy": result.valid_scores}},
                      items.write(out_dir))
        shutil.rmtree(folder / "training", ignore_errors=True)  # resume state is not needed once the solver is saved
    ctx.barrier()
    return metrics


class SolverSplits(NamedTuple):
    """What a teacher stage wrote, with the examples of its splits (``valid`` is empty without one)."""

    teacher: object
    data: DataSettings
    train: list
    valid: list
    test: list


def solver_splits(teacher_out: Path) -> SolverSplits:
    """The teacher of a teacher stage and its train (trainable only), validation and test examples."""
    teacher, tokenizer, meta = load_solver(checkpoint_dir(teacher_out) / "solver")
    data = DataSettings(**meta["data"])
    train_problems, valid_problems = load_train_valid(data)
    train = trainable(encode_all(train_problems, tokenizer, teacher.vocab, data), teacher.max_steps)
    valid = encode_all(valid_problems, tokenizer, teacher.vocab, data)
    test = encode_all(load_problems(data, data.test_split, data.test_limit), tokenizer, teacher.vocab, data)
    return SolverSplits(teacher, data, train, valid, test)


def solver_data(teacher_out: Path):
    """(teacher, its data settings, train examples, test examples) of a teacher stage."""
    teacher, data, train, _, test = solver_splits(teacher_out)
    return teacher, data, train, test

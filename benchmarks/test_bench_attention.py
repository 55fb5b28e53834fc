"""Forward-pass benchmarks of a small eager BERT: unpruned, 30% of heads masked, 30% of heads removed.

Not part of the test suite (``addopts`` has ``--benchmark-skip``); run with
``pytest benchmarks --benchmark-only``. One intra-op thread, ``torch.inference_mode``, fixed input.
Masking uses the model's own ``head_mask`` argument (no compute saved); removal uses
``methods.head_removal.remove_heads``. FLOPs and attention parameter counts go into ``extra_info``.
"""
import acbench  # noqa: F401  (torchvision shim before transformers)

import copy
import random

import pytest
import torch
from transformers import BertConfig, BertModel

from acbench.metering import count_flops, count_parameters

LAYERS, HEADS, HIDDEN, SEQ, BATCH, PRUNED_SHARE = 4, 8, 256, 128, 1, 0.3
THREADS = 1


def chosen_heads() -> dict[int, list[int]]:
    """30% of all (layer, head) pairs, drawn with a fixed seed: {layer: [heads]}."""
    pairs = [(layer, head) for layer in range(LAYERS) for head in range(HEADS)]
    picked = random.Random(0).sample(pairs, round(PRUNED_SHARE * len(pairs)))
    heads: dict[int, list[int]] = {}
    for layer, head in sorted(picked):
        heads.setdefault(layer, []).append(head)
    return heads


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=1000, hidden_size=HIDDEN, num_attention_heads=HEADS, num_hidden_layers=LAYERS,
                        intermediate_size=4 * HIDDEN, max_position_embeddings=SEQ, attn_implementation="eager")
    model = BertModel(config).eval()
    input_ids = torch.randint(0, config.vocab_size, (BATCH, SEQ), generator=torch.Generator().manual_seed(0))
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield model, input_ids, chosen_heads()
    torch.set_num_threads(previous)


def run(benchmark, model, inputs: dict, **info):
    flops = count_flops(model, inputs)
    benchmark.extra_info.update(info, threads=THREADS, input_shapes=flops["input_shapes"], fvcore_flops=flops["total"],
                                attention_params=count_parameters(model)["counts"].get("attention"))

    def forward():
        with torch.inference_mode():
            return model(**inputs)

    benchmark(forward)


def test_unpruned(benchmark, setup):
    model, input_ids, _ = setup
    run(benchmark, model, {"input_ids": input_ids}, variant="unpruned")


def test_heads_masked(benchmark, setup):
    model, input_ids, heads = setup
    head_mask = torch.ones(LAYERS, HEADS)
    for layer, hs in heads.items():
        head_mask[layer, hs] = 0.0
    run(benchmark, model, {"input_ids": input_ids, "head_mask": head_mask}, variant="masked", heads=heads)


def test_heads_removed(benchmark, setup):
    module = pytest.importorskip("methods.head_removal", reason="methods.head_removal is not importable yet")
    remove_heads = getattr(module, "remove_heads", None)
    if remove_heads is None:
        pytest.skip("methods.head_removal has no remove_heads yet")
    model, input_ids, heads = setup
    pruned = copy.deepcopy(model)
    remove_heads(pruned, heads)
    run(benchmark, pruned, {"input_ids": input_ids}, variant="removed", heads=heads)

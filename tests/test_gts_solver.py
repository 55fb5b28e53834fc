"""The GTS tree decoder: teacher forcing agrees with decoding, the tree structure is what conditions a
right operand, decoding always closes the tree, and it can fit problems."""
from __future__ import annotations

import pytest
import torch

from acbench.data.types import MWPProblem
from acbench.mwp.notation import parse_prefix
from acbench.mwp.numbers import find_numbers
from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.evaluate import is_correct
from acbench.solver.examples import OPERATORS, OutputVocab, collate, encode_problem
from acbench.solver.gts import GTSSolver
from acbench.solver.losses import task_loss
from acbench.solver.model import NEG
from acbench.solver.tokenizers import CharTokenizer

TEXTS = ["有 3 个苹果,又买了 12 个", "有 8 本书,借走 5 本,又买 2 本", "每盒 4 支笔, 6 盒"]
EQUATIONS = ["x=3+12", "x=8-5+2", "x=4*6"]
ANSWERS = ["15", "5", "24"]
VOCAB = OutputVocab(("1",), 4)


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer.build([(t, find_numbers(t)) for t in TEXTS])


@pytest.fixture(scope="module")
def examples(tokenizer):
    return [encode_problem(MWPProblem(str(i), "t", t, e, a), tokenizer, VOCAB, 64)
            for i, (t, e, a) in enumerate(zip(TEXTS, EQUATIONS, ANSWERS))]


def _tiny(tokenizer, max_steps: int = 8, dropout: float = 0.0, seed: int = 0) -> GTSSolver:
    torch.manual_seed(seed)
    spec = EncoderSpec(kind="scratch", num_layers=1, num_heads=2, hidden=16, intermediate=32, dropout=0.0)
    return GTSSolver(build_encoder(spec, tokenizer.vocab_size), VOCAB, max_steps, dropout)


def _labels(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [-100] * (width - len(r)) for r in rows])


def test_teacher_forced_logits_have_one_row_per_gold_step_and_mask_absent_slots(tokenizer, examples):
    model = _tiny(tokenizer).eval()
    batch = collate(examples, VOCAB)
    logits = model(batch).logits
    assert logits.shape == (*batch["labels"].shape, VOCAB.size)
    ended = batch["labels"] == -100
    assert ended.any() and torch.all(logits[ended] == 0)
    n_fixed = len(VOCAB.fixed)
    first = examples[0]  # two numbers: slots N2, N3 do not exist
    assert torch.all(logits[0, :len(first.target), n_fixed + 2:] == NEG)


def test_teacher_forcing_along_the_greedy_output_reproduces_its_choices(tokenizer, examples):
    model = _tiny(tokenizer, seed=3).eval()
    batch = collate(examples, VOCAB)
    decoded = model.decode(batch)
    batch["labels"] = _labels([[VOCAB.index(t) for t in out] for out in decoded])
    logits = model(batch).logits
    n_ops = len(OPERATORS)
    for i, out in enumerate(decoded):
        open_slots = 1
        for t, token in enumerate(out):
            row = logits[i, t].clone()
            if open_slots + 1 > model.max_steps - t - 1:  # the grammar barred operators at this step
                row[:n_ops] = NEG * 10
            assert VOCAB.tokens[int(row.argmax())] == token
            open_slots += 1 if VOCAB.is_operator(VOCAB.index(token)) else -1


def test_a_right_operand_is_conditioned_on_the_left_subtree_and_nothing_on_later_steps(tokenizer, examples):
    model = _tiny(tokenizer).eval()
    batch = collate([examples[0], examples[0]], VOCAB)
    plus, n0, n1 = VOCAB.index("+"), VOCAB.index("N0"), VOCAB.index("N1")
    batch["labels"] = torch.tensor([[plus, n0, n1], [plus, n1, n1]])
    logits = model(batch).logits
    assert torch.allclose(logits[0, :2], logits[1, :2])  # steps before the change see the same goals
    assert not torch.allclose(logits[0, 2], logits[1, 2])  # the right goal reads the left subtree


def test_decoding_always_closes_the_tree_within_max_steps(tokenizer, examples):
    for seed in range(5):
        model = _tiny(tokenizer, max_steps=5).eval()
        with torch.no_grad():
            model.op_head.bias.add_(torch.randn_like(model.op_head.bias) * 3 * seed + 3 * seed)  # favour operators
        for tokens in model.decode(collate(examples, VOCAB)):
            assert 1 <= len(tokens) <= model.max_steps
            parse_prefix(tokens)  # raises unless complete and well-formed
            assert "N3" not in tokens  # no problem here has a fourth number


def test_a_tiny_gts_solver_fits_three_problems(tokenizer, examples):
    model = _tiny(tokenizer, dropout=0.1).train()
    batch = collate(examples, VOCAB)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        first = float(task_loss(model(batch).logits, batch["labels"]))
    for _ in range(150):
        optimizer.zero_grad()
        loss = task_loss(model(batch).logits, batch["labels"])
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.1 * first
    model.eval()
    assert all(is_correct(e, p) for e, p in zip(examples, model.decode(batch)))

"""The MWP solver: number positions, batches, grammar-constrained decoding, losses."""
from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from acbench.data.types import MWPProblem
from acbench.mwp.notation import parse_prefix
from acbench.mwp.numbers import find_numbers
from acbench.solver.encoders import EncoderSpec, build_encoder
from acbench.solver.evaluate import is_correct
from acbench.solver.examples import OutputVocab, collate, encode_problem
from acbench.solver.losses import distill_loss, task_loss
from acbench.solver.model import MWPSolver
from acbench.solver.tokenizers import CharTokenizer

TEXT = "小明有 3 个苹果,又买了 12.5 个,还剩 (1/2) 个"


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer.build([(TEXT, find_numbers(TEXT))])


def test_char_tokenizer_puts_one_num_token_per_number(tokenizer):
    numbers = find_numbers(TEXT)
    ids, positions = tokenizer.encode(TEXT, numbers, 64)
    assert [n.text for n in numbers] == ["3", "12.5", "(1/2)"]
    assert [tokenizer.vocab[ids[p]] for p in positions] == ["[NUM]"] * 3
    assert ids[0] == tokenizer.index["[CLS]"] and ids[-1] == tokenizer.index["[SEP]"]
    assert " " not in tokenizer.vocab
    short_ids, short_pos = tokenizer.encode(TEXT, numbers, 8)  # truncation drops later numbers
    assert len(short_ids) == 8 and short_pos[1:] == [None, None]


def test_problem_becomes_prefix_target_over_slots(tokenizer):
    vocab = OutputVocab(("1",), 4)
    ex = encode_problem(MWPProblem("1", "t", TEXT, "x=3+12.5-1", "14.5"), tokenizer, vocab, 64)
    assert [vocab.tokens[t] for t in ex.target] == ["-", "+", "N0", "N1", "1"]
    assert ex.slot_values == [Fraction(3), Fraction(25, 2), Fraction(1, 2)]
    assert is_correct(ex, ["-", "+", "N0", "N1", "1"]) and not is_correct(ex, ["N0"])
    assert not is_correct(ex, ["/", "N0", "-", "1", "1"])  # division by zero is wrong, not an error
    bad = encode_problem(MWPProblem("2", "t", TEXT, "x=3*7", "21"), tokenizer, vocab, 64)
    assert bad.target is None  # 7 is neither in the text nor a constant


def test_collate_teacher_forcing_shifts_targets(tokenizer):
    vocab = OutputVocab(("1",), 4)
    a = encode_problem(MWPProblem("1", "t", TEXT, "x=3+12.5", "15.5"), tokenizer, vocab, 64)
    b = encode_problem(MWPProblem("2", "t", "有 5 个", "x=5", "5"), tokenizer, vocab, 64)
    batch = collate([a, b], vocab)
    assert batch["labels"][0].tolist() == a.target and batch["labels"][1].tolist() == b.target + [-100, -100]
    assert batch["decoder_input"][0].tolist() == [vocab.go] + a.target[:-1]
    assert batch["slot_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["attention_mask"].sum(1).tolist() == [len(a.input_ids), len(b.input_ids)]


def _tiny_solver(vocab_size: int, max_steps: int = 6) -> MWPSolver:
    torch.manual_seed(0)
    spec = EncoderSpec(kind="scratch", num_layers=1, num_heads=2, hidden=16, intermediate=32, dropout=0.0)
    return MWPSolver(build_encoder(spec, vocab_size), OutputVocab(("1",), 4), 1, 2, max_steps, 0.0).eval()


def test_decoding_always_yields_a_complete_prefix_expression_within_max_steps(tokenizer):
    vocab = OutputVocab(("1",), 4)
    examples = [encode_problem(MWPProblem(str(i), "t", TEXT, "x=3+12.5", "15.5"), tokenizer, vocab, 64)
                for i in range(3)]
    for seed in range(5):
        model = _tiny_solver(tokenizer.vocab_size)
        with torch.no_grad():
            for p in model.fixed_head.parameters():  # bias the decoder towards operators
                p.add_(torch.randn_like(p) * seed)
        for tokens in model.decode(collate(examples, vocab)):
            assert 1 <= len(tokens) <= model.max_steps
            parse_prefix(tokens)  # raises unless complete and well-formed
            assert "N3" not in tokens  # the slot that does not exist in these problems is never chosen


def test_losses_are_per_example_means_and_kd_is_zero_for_equal_logits():
    logits = torch.randn(2, 3, 7)
    labels = torch.tensor([[1, 2, -100], [3, -100, -100]])
    ce = torch.nn.functional.cross_entropy
    expected = (ce(logits[0, :2], labels[0, :2]) + ce(logits[1, :1], labels[1, :1])) / 2
    assert task_loss(logits, labels) == pytest.approx(float(expected), rel=1e-6)
    assert float(distill_loss(logits, logits.clone(), labels, 2.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(distill_loss(logits, torch.randn(2, 3, 7), labels, 2.0)) > 0

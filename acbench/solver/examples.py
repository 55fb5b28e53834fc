"""From problems to training examples: output vocabulary, number slots, prefix targets, padded batches."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from acbench.data.types import MWPProblem
from acbench.mwp.errors import ExpressionError
from acbench.mwp.notation import infix_to_prefix
from acbench.mwp.numbers import equation_to_slots, find_numbers

OPERATORS = ["+", "-", "*", "/", "^"]


@dataclass(frozen=True)
class OutputVocab:
    """Decoder outputs: operators, constants, then slots ``N0 … N{max_slots-1}``; ``go`` starts a sequence."""

    constants: tuple[str, ...]
    max_slots: int

    @property
    def fixed(self) -> list[str]:
        return OPERATORS + list(self.constants)

    @property
    def tokens(self) -> list[str]:
        return self.fixed + [f"N{i}" for i in range(self.max_slots)]

    @property
    def size(self) -> int:
        return len(self.fixed) + self.max_slots

    @property
    def go(self) -> int:
        return self.size

    def index(self, token: str) -> int:
        try:
            return self.tokens.index(token)
        except ValueError:
            raise ExpressionError(f"token {token!r} is not in the output vocabulary") from None

    def is_operator(self, index: int) -> bool:
        return index < len(OPERATORS)


@dataclass(frozen=True)
class Example:
    id: str
    input_ids: list[int]
    slot_positions: list[int]
    slot_values: list[Fraction]
    target: list[int] | None  # prefix expression as output indices; None when it cannot be expressed
    answer: str  # gold answer string, scored with acbench.mwp.answer


def encode_problem(problem: MWPProblem, tokenizer, vocab: OutputVocab, max_length: int,
                   number_words: bool = False) -> Example:
    """``number_words``: also read cardinal words ("three", "twenty-five") as numbers (ASDiv-A)."""
    numbers = find_numbers(problem.text, words=number_words)[:vocab.max_slots]
    ids, positions = tokenizer.encode(problem.text, numbers, max_length)
    kept = [(n, p) for n, p in zip(numbers, positions) if p is not None]
    target = None
    try:
        infix = equation_to_slots(problem.equation, [n.value for n, _ in kept], vocab.constants)
        target = [vocab.index(t) for t in infix_to_prefix(infix)]
    except ExpressionError:
        pass
    return Example(problem.id, ids, [p for _, p in kept], [n.value for n, _ in kept], target, problem.answer)


def collate(examples: list[Example], vocab: OutputVocab) -> dict[str, torch.Tensor]:
    """Pad a batch. Teacher forcing: ``decoder_input`` = go + target[:-1], ``labels`` = target (-100 pad)."""
    batch = len(examples)
    length = max(len(e.input_ids) for e in examples)
    slots = max(1, max(len(e.slot_positions) for e in examples))
    out_len = max(1, max(len(e.target or []) for e in examples))
    input_ids = torch.zeros(batch, length, dtype=torch.long)
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    slot_positions = torch.zeros(batch, slots, dtype=torch.long)
    slot_mask = torch.zeros(batch, slots, dtype=torch.bool)
    decoder_input = torch.full((batch, out_len), vocab.go, dtype=torch.long)
    labels = torch.full((batch, out_len), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        input_ids[i, :len(e.input_ids)] = torch.tensor(e.input_ids)
        attention_mask[i, :len(e.input_ids)] = 1
        if e.slot_positions:
            slot_positions[i, :len(e.slot_positions)] = torch.tensor(e.slot_positions)
            slot_mask[i, :len(e.slot_positions)] = True
        if e.target:
            labels[i, :len(e.target)] = torch.tensor(e.target)
            decoder_input[i, 1:len(e.target)] = torch.tensor(e.target[:-1])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "slot_positions": slot_positions,
            "slot_mask": slot_mask, "decoder_input": decoder_input, "labels": labels}

"""Input tokenizers that also report where each number of the problem text sits in the token sequence.

The decoder points at numbers through these positions (one per number, in order of appearance).
- :class:`WordPieceTokenizer`: the pretrained encoder's own (fast) tokenizer, e.g. MiniLM-L6's
  WordPiece. Numbers stay visible as text; a number's position is its first sub-token.
- :class:`CharTokenizer`: characters seen in the training texts (Chinese; Math23k), each number
  replaced by one ``[NUM]`` token; spaces are dropped.
- :class:`acbench.solver.e5_vocab.E5Tokenizer`: e5's XLM-R unigram tokenizer mapped into a trimmed
  vocabulary (``<s> … </s>``, e5's ``"query: "`` prefix).
The first two add ``[CLS]`` … ``[SEP]``, truncate to ``max_length`` and pad with id 0.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from acbench.mwp.numbers import TextNumber

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[NUM]"]


class WordPieceTokenizer:
    kind = "wordpiece"

    def __init__(self, source: str):
        from transformers import AutoTokenizer

        from acbench.solver.encoders import pretrained_dir

        self.source = source
        self._tok = AutoTokenizer.from_pretrained(str(pretrained_dir(source)), use_fast=True)
        self.vocab_size = self._tok.vocab_size

    def encode(self, text: str, numbers: list[TextNumber], max_length: int) -> tuple[list[int], list[int | None]]:
        """Token ids and each number's token position (None when truncated away)."""
        enc = self._tok(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        positions = []
        for num in numbers:
            pos = next((i for i, (a, b) in enumerate(offsets) if b > a and a < num.end and b > num.start), None)
            positions.append(pos)
        return list(enc["input_ids"]), positions

    def to_json(self) -> dict:
        return {"kind": self.kind, "source": self.source}


class CharTokenizer:
    kind = "char"

    def __init__(self, vocab: list[str]):
        if vocab[:len(SPECIALS)] != SPECIALS:
            raise ValueError(f"a character vocabulary must start with {SPECIALS}")
        self.vocab = vocab
        self.index = {c: i for i, c in enumerate(vocab)}
        self.vocab_size = len(vocab)

    @classmethod
    def build(cls, texts: Iterable[tuple[str, list[TextNumber]]], min_count: int = 1) -> "CharTokenizer":
        counts: Counter[str] = Counter()
        for text, numbers in texts:
            counts.update(c for c in cls._pieces(text, numbers) if c not in SPECIALS)
        chars = sorted(c for c, n in counts.items() if n >= min_count)
        return cls(SPECIALS + chars)

    @staticmethod
    def _pieces(text: str, numbers: list[TextNumber]) -> list[str]:
        pieces, pos = [], 0
        for num in numbers:
            pieces += [c for c in text[pos:num.start] if not c.isspace()] + ["[NUM]"]
            pos = num.end
        return pieces + [c for c in text[pos:] if not c.isspace()]

    def encode(self, text: str, numbers: list[TextNumber], max_length: int) -> tuple[list[int], list[int | None]]:
        pieces = ["[CLS]"] + self._pieces(text, numbers)[:max_length - 2] + ["[SEP]"]
        ids = [self.index.get(p, 1) for p in pieces]
        num_positions = [i for i, p in enumerate(pieces) if p == "[NUM]"]
        return ids, num_positions + [None] * (len(numbers) - len(num_positions))

    def to_json(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab}


def tokenizer_from_json(data: dict):
    if data["kind"] == "wordpiece":
        return WordPieceTokenizer(data["source"])
    if data["kind"] == "char":
        return CharTokenizer(data["vocab"])
    if data["kind"] == "e5":
        from acbench.solver.e5_vocab import E5Tokenizer
        from acbench.solver.e5_weights import load_tokenizer

        return E5Tokenizer(load_tokenizer(), data["kept"], data["prefix"])
    raise ValueError(f"unknown tokenizer kind {data.get('kind')!r}")


def save_tokenizer(tokenizer, path: Path) -> None:
    Path(path).write_text(json.dumps(tokenizer.to_json(), ensure_ascii=False), encoding="utf-8")

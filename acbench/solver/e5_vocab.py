"""A trimmed e5 vocabulary: the XLM-R pieces a corpus uses, and a solver tokenizer that maps onto them.

multilingual-e5-small has 250,037 embedding rows (96M of its 117M parameters); Math23k uses a few
thousand. :func:`kept_ids` lists the pieces that tokenising the corpus produces (plus the special
tokens), sorted by original id, and :func:`acbench.solver.e5_weights.load_encoder` keeps only those
rows: new id ``i`` is original id ``kept[i]``. :class:`E5Tokenizer` tokenises with the full XLM-R
tokenizer and maps each id through that table, so every text whose pieces were counted encodes to
exactly the states the full model gives it; a piece outside the table becomes ``<unk>`` (counted in
``unknown``). The specials keep their ids (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from acbench.mwp.numbers import TextNumber

DEFAULT_PREFIX = "query: "  # e5 was trained with a "query: " / "passage: " prefix on every input
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def count_pieces(tokenizer, texts: Iterable[str], prefix: str = DEFAULT_PREFIX) -> Counter:
    """How often each original token id occurs in ``prefix + text`` over ``texts`` (specials included)."""
    counts: Counter = Counter()
    for ids in tokenizer([prefix + t for t in texts], add_special_tokens=True)["input_ids"]:
        counts.update(ids)
    return counts


def kept_ids(tokenizer, texts: Iterable[str], prefix: str = DEFAULT_PREFIX) -> list[int]:
    """Sorted original ids of the special tokens and of every piece the texts use."""
    specials = tokenizer.convert_tokens_to_ids(list(SPECIALS))
    return sorted(set(specials) | set(count_pieces(tokenizer, texts, prefix)))


class E5Tokenizer:
    """The solver's tokenizer interface (see :mod:`acbench.solver.tokenizers`) over e5's XLM-R unigram
    tokenizer, with ids mapped into a trimmed vocabulary (``kept``; None keeps all 250,002 pieces).

    ``encode`` returns ``<s> prefix+text </s>`` truncated to ``max_length``, and each number's
    position: the first token overlapping the number's characters (None when truncated away).
    """

    kind = "e5"

    def __init__(self, tokenizer, kept: list[int] | None = None, prefix: str = DEFAULT_PREFIX):
        self._tok, self.prefix = tokenizer, prefix
        self.kept = None if kept is None else list(kept)
        if self.kept is not None and self.kept != sorted(set(self.kept)):
            raise ValueError("kept ids must be sorted and distinct (use kept_ids)")
        self.unk = tokenizer.unk_token_id
        self.new_id = None if self.kept is None else {old: new for new, old in enumerate(self.kept)}
        if self.new_id is not None and self.unk not in self.new_id:
            raise ValueError("the trimmed vocabulary must keep <unk>")
        self.vocab_size = len(tokenizer) if self.kept is None else len(self.kept)
        self.unknown = 0  # pieces mapped to <unk> because the trimmed vocabulary lacks them

    def map_ids(self, ids: Iterable[int]) -> list[int]:
        """Original ids → trimmed ids (a missing piece → ``<unk>``, counted in ``unknown``)."""
        if self.new_id is None:
            return list(ids)
        out = []
        for i in ids:
            new = self.new_id.get(i)
            if new is None:
                self.unknown += 1
                new = self.new_id[self.unk]
            out.append(new)
        return out

    def encode(self, text: str, numbers: list[TextNumber], max_length: int) -> tuple[list[int], list[int | None]]:
        enc = self._tok(self.prefix + text, truncation=True, max_length=max_length, return_offsets_mapping=True)
        shift = len(self.prefix)
        positions = []
        for num in numbers:
            start, end = num.start + shift, num.end + shift
            positions.append(next((i for i, (a, b) in enumerate(enc["offset_mapping"])
                                   if b > a and a < end and b > start), None))
        return self.map_ids(enc["input_ids"]), positions

    def to_json(self) -> dict:
        return {"kind": self.kind, "prefix": self.prefix, "kept": self.kept}

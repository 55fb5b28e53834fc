"""Problems of a dataset split, encoded for the solver, with the subset sizes a profile asks for."""
from __future__ import annotations

from pydantic import Field

from acbench.config import Strict
from acbench.data import load_split
from acbench.solver.examples import Example, OutputVocab, encode_problem


class DataSettings(Strict):
    name: str  # a dataset of datasets/ (asdiv_a, math23k)
    train_split: str = "train"
    test_split: str = "test"
    fold: int | None = None
    root: str | None = None  # data root; default: ACBENCH_DATA_ROOT, then a verified download
    number_words: bool = False  # read "three", "twenty-five" as numbers (ASDiv-A)
    constants_min_count: int = Field(5, ge=1)
    max_length: int = Field(128, ge=8)
    max_slots: int = Field(12, ge=1)
    train_limit: int | None = Field(None, ge=1, description="first N training problems (a fixed subset)")
    test_limit: int | None = Field(None, ge=1)


def load_problems(settings: DataSettings, split: str, limit: int | None):
    problems = load_split(settings.name, split, settings.root, fold=settings.fold)
    return problems[:limit] if limit else problems


def encode_all(problems, tokenizer, vocab: OutputVocab, settings: DataSettings) -> list[Example]:
    return [encode_problem(p, tokenizer, vocab, settings.max_length, settings.number_words) for p in problems]


def trainable(examples: list[Example], max_steps: int) -> list[Example]:
    """Examples whose gold equation is expressible and fits the decoder."""
    return [e for e in examples if e.target and len(e.target) <= max_steps]

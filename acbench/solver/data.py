"""Problems of a dataset split, encoded for the solver, with the subset sizes a profile asks for.

Model selection uses a validation split only, never the test split: a named split of the dataset
(``valid_split``, e.g. Math23k's standard validation ids) or a seeded share of the training
problems held out (``valid_fraction``, e.g. of an ASDiv-A fold's training problems).
"""
from __future__ import annotations

import random

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
    valid_split: str | None = Field(None, description="a split of the dataset used for model selection")
    valid_fraction: float = Field(0.0, ge=0, lt=0.5, description="share of the training problems held out "
                                  "for model selection (seeded by valid_seed)")
    valid_seed: int = 0
    valid_limit: int | None = Field(None, ge=1)

    def model_post_init(self, __context) -> None:
        if self.valid_split is not None and self.valid_fraction > 0:
            raise ValueError("give valid_split or valid_fraction, not both")

    @property
    def has_validation(self) -> bool:
        return self.valid_split is not None or self.valid_fraction > 0


def load_problems(settings: DataSettings, split: str, limit: int | None):
    problems = load_split(settings.name, split, settings.root, fold=settings.fold)
    return problems[:limit] if limit else problems


def load_train_valid(settings: DataSettings) -> tuple[list, list]:
    """(training problems, validation problems): the validation split, or a seeded share held out of
    the training split (the held-out share is taken before ``train_limit``, so a subset never moves it)."""
    train = load_split(settings.name, settings.train_split, settings.root, fold=settings.fold)
    if settings.valid_split is not None:
        valid = load_split(settings.name, settings.valid_split, settings.root, fold=settings.fold)
    elif settings.valid_fraction > 0:
        order = list(range(len(train)))
        random.Random(settings.valid_seed).shuffle(order)
        held = set(order[:max(1, round(settings.valid_fraction * len(train)))])
        valid = [p for i, p in enumerate(train) if i in held]
        train = [p for i, p in enumerate(train) if i not in held]
    else:
        valid = []
    return (train[:settings.train_limit] if settings.train_limit else train,
            valid[:settings.valid_limit] if settings.valid_limit else valid)


def encode_all(problems, tokenizer, vocab: OutputVocab, settings: DataSettings) -> list[Example]:
    return [encode_problem(p, tokenizer, vocab, settings.max_length, settings.number_words) for p in problems]


def trainable(examples: list[Example], max_steps: int) -> list[Example]:
    """Examples whose gold equation is expressible and fits the decoder."""
    return [e for e in examples if e.target and len(e.target) <= max_steps]

"""Answer accuracy: decode, evaluate the expression exactly over the problem's numbers, compare with gold."""
from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from acbench.items import Outcomes
from acbench.mwp.answer import athena_correct, parse_gold_answer
from acbench.mwp.errors import ExpressionError
from acbench.mwp.evaluate import evaluate_prefix
from acbench.solver.examples import Example, collate
from acbench.solver.model import MWPSolver


def predict(model: MWPSolver, examples: Sequence[Example], batch_size: int = 64, desc: str = "decode") -> list[list[str]]:
    model.eval()
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, len(examples), batch_size), desc=desc, mininterval=5, leave=False):
            out += model.decode(collate(list(examples[start:start + batch_size]), model.vocab))
    return out


def is_correct(example: Example, prediction: list[str]) -> bool:
    """ATHENA's check (both sides as floats); an expression that does not evaluate (e.g. /0) is wrong."""
    try:
        value = evaluate_prefix(prediction, example.slot_values)
        return athena_correct(float(value), float(parse_gold_answer(example.answer)))
    except (ExpressionError, ZeroDivisionError, OverflowError, ValueError):
        return False


def answer_outcomes(model: MWPSolver, examples: Sequence[Example], batch_size: int = 64,
                    desc: str = "decode") -> Outcomes:
    """Per-problem outcomes: the problem's id, whether the answer is right, the predicted prefix expression."""
    if not examples:
        raise ValueError("no examples to evaluate")
    predictions = predict(model, examples, batch_size, desc)
    return Outcomes(tuple(str(e.id) for e in examples), tuple(is_correct(e, p) for e, p in zip(examples, predictions)),
                    tuple(" ".join(p) for p in predictions))


def answer_accuracy(model: MWPSolver, examples: Sequence[Example], batch_size: int = 64, desc: str = "decode") -> float:
    """Percentage of problems answered correctly."""
    return answer_outcomes(model, examples, batch_size, desc).accuracy

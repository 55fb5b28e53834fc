"""Exact evaluation of infix and prefix expressions with ``fractions.Fraction``.

Every failure (malformed input, unknown slot, division by zero, bad exponent) raises
``ExpressionError``; Python ``eval`` is never used.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Sequence, Union

from acbench.mwp.errors import ExpressionError
from acbench.mwp.literals import parse_number
from acbench.mwp.notation import NEG, Tree, parse_infix, parse_prefix, slot_index

Number = Union[Fraction, int, str]

MAX_EXPONENT = 64
MAX_RESULT_BITS = 4096


def _value(x: Number) -> Fraction:
    return parse_number(x) if isinstance(x, str) else Fraction(x)


def _leaf(token: str, slots: Sequence[Number] | None) -> Fraction:
    idx = slot_index(token)
    if idx is None:
        return parse_number(token)
    if slots is None or idx >= len(slots):
        raise ExpressionError(f"no value for slot {token}")
    return _value(slots[idx])


def power(base: Fraction, exponent: Fraction) -> Fraction:
    """``base ** exponent`` for an integer exponent with |exponent| <= MAX_EXPONENT."""
    if exponent.denominator != 1:
        raise ExpressionError(f"non-integer exponent {exponent}")
    if abs(exponent) > MAX_EXPONENT:
        raise ExpressionError(f"exponent {exponent} exceeds the limit {MAX_EXPONENT}")
    size = max(base.numerator.bit_length(), base.denominator.bit_length())
    if size * abs(int(exponent)) > MAX_RESULT_BITS:
        raise ExpressionError(f"power result too large ({base}^{exponent})")
    if base == 0 and exponent < 0:
        raise ExpressionError("division by zero (0 raised to a negative power)")
    return base ** int(exponent)


def apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    """One binary operation; raises ``ExpressionError`` on division by zero."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise ExpressionError(f"division by zero ({a} / 0)")
        return a / b
    if op == "^":
        return power(a, b)
    raise ExpressionError(f"unknown operator {op!r}")


def evaluate_tree(tree: Tree, slot_values: Sequence[Number] | None = None) -> Fraction:
    """Value of a parsed tree (see ``acbench.mwp.notation``)."""
    try:
        if isinstance(tree, str):
            return _leaf(tree, slot_values)
        if tree[0] == NEG:
            return -evaluate_tree(tree[1], slot_values)
        return apply(tree[0], evaluate_tree(tree[1], slot_values), evaluate_tree(tree[2], slot_values))
    except RecursionError:
        raise ExpressionError("expression nested too deeply") from None


def evaluate(expression: str | Sequence[str], slot_values: Sequence[Number] | None = None) -> Fraction:
    """Exact value of an infix expression (string or tokens); ``N<i>`` reads ``slot_values[i]``.

    >>> evaluate("3(1/2)+20%*(1/6)*[2^2]")
    Fraction(109, 30)
    """
    return evaluate_tree(parse_infix(expression), slot_values)


def evaluate_prefix(tokens: Sequence[str], slot_values: Sequence[Number] | None = None) -> Fraction:
    """Exact value of a prefix token list (operators + - * / ^, ``neg``, slots, literals)."""
    return evaluate_tree(parse_prefix(tokens), slot_values)
